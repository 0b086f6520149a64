"""Where an address is, roughly, from data shipped with the package (no network, no API key).

- US addresses: the centroid of the address's 3-digit ZIP prefix (933 prefixes); typically within a
  few tens of km of the address, enough to tell which of two warehouses is closer.
- Any other country: one point for the whole country, so two warehouses in the same non-US country
  tie on distance and the next rule (priority) decides.
- Unknown: no point; such an address ties with every warehouse.

``scripts/build_geo_data.py`` regenerates the data files.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import NamedTuple

_DATA = Path(__file__).resolve().parent / "data"
EARTH_RADIUS_KM = 6371.0


class Point(NamedTuple):
    lat: float
    lon: float
    precision: str  # "zip3" | "country"


@cache
def _zip3() -> dict[str, list[float]]:
    return json.loads((_DATA / "us_zip3.json").read_text())


@cache
def _countries() -> dict[str, list[float]]:
    return json.loads((_DATA / "countries.json").read_text())


@cache
def locate(country: str | None, postal_code: str | None) -> Point | None:
    """Where the address is (a ZIP3 centroid in the US, the country's point elsewhere), or None; cached:
    a seller's warehouses are located again at every allocation."""
    country = (country or "").upper()
    if country == "US" and postal_code:
        digits = "".join(ch for ch in postal_code if ch.isdigit())
        if len(digits) >= 3 and digits[:3] in _zip3():
            lat, lon = _zip3()[digits[:3]]
            return Point(lat, lon, "zip3")
    if country in _countries():
        lat, lon = _countries()[country]
        return Point(lat, lon, "country")
    return None


def distance_km(a: Point | None, b: Point | None) -> float | None:
    """Great-circle distance; None when either end is unknown."""
    if a is None or b is None:
        return None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
