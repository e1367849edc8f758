"""The scale of real instrument TIFFs (Zeiss SmartSEM, Thermo Fisher/FEI Helios) against their own tags.

The four files come from the hyperspy 1.7.6 wheel (``instrument_tiffs``
fixture, fetched by ``scripts/fetch_fixtures.py``): a 1024-px and a 512-px
Zeiss image (palette TIFFs, white framed stripe, "200 µm" / "200 nm" over a
bracket) and the same Helios frame in 8 and 16 bits (black table-cell stripe,
"500 µm" inside the bar, "HFW" over "1.73 mm").  Every truth is read here with
tifffile from the file's vendor tag, never with semcurate's own reader.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from semcurate.ingest.databar_geometry import Stripe, find_stripe
from semcurate.ingest.images import decode_image
from semcurate.ingest.ocr import get_engine
from semcurate.ingest.scale_bar import read_scale_bytes

#: Zeiss SmartSEM states ``Pixel Size`` (``ap_pixel_size``) for a 1024-px-wide frame whatever the width the
#: image was stored at; hyperspy's TIFF reader scales it by 1024 / width, and so does this test's truth.
ZEISS_REFERENCE_WIDTH_PX = 1024
#: Nanometres per unit of the lengths Zeiss writes in its tag.
ZEISS_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "mm": 1e6}
#: What each file prints as its scale label: (value, unit).
LABELS = {
    "test_tiff_Zeiss_SEM_1k.tif": (200, "µm"),
    "test_tiff_Zeiss_SEM_512pix.tif": (200, "nm"),
    "FEI-Helios-Ebeam-8bits.tif": (500, "µm"),
    "FEI-Helios-Ebeam-16bits.tif": (500, "µm"),
}
#: Pixels-only readings must lie this close to the instrument's pixel size (issue 12).
WITHIN = 0.02


def instrument_truth(path) -> dict:
    """Pixel size in nm (and, for FEI, the field width in nm and the data bar's first row) from the vendor tag."""
    with tifffile.TiffFile(path) as tif:
        width = tif.pages[0].imagewidth
        zeiss, fei = tif.sem_metadata, tif.fei_metadata
    if zeiss:
        if "ap_image_pixel_size" in zeiss:
            _name, value, unit = zeiss["ap_image_pixel_size"]
            return {"nm_per_px": value * ZEISS_NM[unit]}
        _name, value, unit = zeiss["ap_pixel_size"]
        return {"nm_per_px": value * ZEISS_NM[unit] * ZEISS_REFERENCE_WIDTH_PX / width}
    return {
        "nm_per_px": fei["Scan"]["PixelWidth"] * 1e9,
        "field_nm": fei["Scan"]["HorFieldsize"] * 1e9,
        "stripe_top": fei["Image"]["ResolutionY"],
        "stripe_rows": fei["PrivateFei"]["DatabarHeight"],
    }


@pytest.fixture(scope="module")
def engine():
    return get_engine()


def test_zeiss_pixel_size_convention_matches_the_printed_field_width(instrument_tiffs):
    """The 1024/width rule of the truth agrees with Zeiss' own ``Width`` over the image (a check of the test)."""
    for name in ("test_tiff_Zeiss_SEM_1k.tif", "test_tiff_Zeiss_SEM_512pix.tif"):
        with tifffile.TiffFile(instrument_tiffs[name]) as tif:
            _name, value, unit = tif.sem_metadata["ap_width"]
            width_nm_per_px = value * ZEISS_NM[unit] / tif.pages[0].imagewidth
        assert instrument_truth(instrument_tiffs[name])["nm_per_px"] == pytest.approx(width_nm_per_px, rel=1e-3)


@pytest.mark.parametrize("name", list(LABELS))
def test_pixels_alone_read_the_instrument_scale(name, instrument_tiffs, engine):
    truth = instrument_truth(instrument_tiffs[name])
    reading = read_scale_bytes(instrument_tiffs[name].read_bytes(), engine=engine, source="ocr")
    assert reading.status == "ok", reading.reason
    assert reading.source == "ocr" and (reading.value, reading.unit) == LABELS[name]
    assert reading.nm_per_px == pytest.approx(truth["nm_per_px"], rel=WITHIN)
    # The bar measured between its end ticks' centres: the label's length over the true pixel size, within 1 px.
    value, unit = LABELS[name]
    assert abs(reading.bar_px - value * ZEISS_NM[unit] / truth["nm_per_px"]) <= 1.0
    assert reading.metadata_nm_per_px is None


@pytest.mark.parametrize("name", list(LABELS))
def test_auto_takes_the_metadata_value_and_keeps_the_pixels(name, instrument_tiffs, engine):
    truth = instrument_truth(instrument_tiffs[name])
    reading = read_scale_bytes(instrument_tiffs[name].read_bytes(), engine=engine, source="auto")
    assert reading.status == "ok" and not reading.flagged
    assert reading.nm_per_px == pytest.approx(truth["nm_per_px"], rel=1e-9)
    assert reading.source in ("both", "metadata")
    assert reading.candidates["metadata"] == pytest.approx(truth["nm_per_px"], rel=1e-9)
    assert reading.candidates["ocr"] == pytest.approx(truth["nm_per_px"], rel=WITHIN)


@pytest.mark.parametrize("name", ["FEI-Helios-Ebeam-8bits.tif", "FEI-Helios-Ebeam-16bits.tif"])
def test_helios_table_stripe_and_printed_field_width(name, instrument_tiffs, engine):
    truth = instrument_truth(instrument_tiffs[name])
    data = instrument_tiffs[name].read_bytes()
    stripe = find_stripe(np.asarray(decode_image(data).display.convert("L")))
    assert isinstance(stripe, Stripe)
    assert stripe.box[1] == truth["stripe_top"] and stripe.box[3] - stripe.box[1] == truth["stripe_rows"]
    reading = read_scale_bytes(data, engine=engine, source="ocr")
    assert reading.field_nm == pytest.approx(truth["field_nm"], rel=WITHIN)
    assert reading.field_nm_per_px == pytest.approx(truth["nm_per_px"], rel=WITHIN)
    assert reading.candidates.keys() == {"ocr", "field"}
