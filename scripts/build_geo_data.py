"""Regenerate orderflow/rules/data/*.json, the offline centroids the allocation rules use for distance.

    pip install zipcodes==3.0.0 countryinfo==1.0.1 && python scripts/build_geo_data.py

- us_zip3.json: for each 3-digit US ZIP prefix, the mean latitude/longitude of its active ZIP codes
  (from the `zipcodes` package's USPS-derived list). Typical error for an address: tens of km.
- countries.json: one point per ISO 3166-1 alpha-2 country (from `countryinfo`). Coarse: every address in
  a country is placed at one point, so within a country outside the US, warehouse priority decides.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "orderflow" / "rules" / "data"


def zip3() -> dict[str, list[float]]:
    import zipcodes

    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for z in zipcodes.list_all():
        if not z.get("active") or not z.get("lat") or not z.get("long"):
            continue
        s = sums[z["zip_code"][:3]]
        s[0] += float(z["lat"])
        s[1] += float(z["long"])
        s[2] += 1
    return {k: [round(v[0] / v[2], 3), round(v[1] / v[2], 3)] for k, v in sorted(sums.items())}


def countries() -> dict[str, list[float]]:
    from countryinfo import all_countries

    out = {}
    for country in all_countries():
        info = country.info()
        code = (info.get("ISO") or country.iso() or {}).get("alpha2")
        latlng = info.get("latlng")
        if code and latlng and len(latlng) == 2:
            out[code.upper()] = [round(float(latlng[0]), 3), round(float(latlng[1]), 3)]
    return dict(sorted(out.items()))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in (("us_zip3.json", zip3()), ("countries.json", countries())):
        (OUT / name).write_text(json.dumps(data, separators=(",", ":")) + "\n")
        print(f"{name}: {len(data)} entries")
