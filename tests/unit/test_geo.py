from orderflow.rules.geo import distance_km, locate


def test_us_zip_prefixes_place_addresses_within_a_region():
    nyc, newark, reno = locate("US", "10001"), locate("US", "07114-1234"), locate("US", "89502")
    assert nyc.precision == "zip3"
    assert distance_km(nyc, newark) < 60
    assert 3000 < distance_km(nyc, reno) < 4000


def test_other_countries_fall_back_to_one_point_and_unknowns_to_none():
    assert locate("de", "10115").precision == "country"
    assert locate("US", "ABC") is not None  # no digits: the country point
    assert locate("ZZ", "1") is None
    assert distance_km(None, locate("US", "10001")) is None
