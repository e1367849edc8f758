"""Parsing OCR text into lengths and magnifications: every tolerated confusion, and what must be refused.

The expected values are written by hand from what the strings mean, not
computed by the code under test.
"""

from __future__ import annotations

import pytest

from semcurate.ingest.length_text import (
    Length,
    StripeFields,
    find_lengths,
    parse_fields,
    parse_length,
    parse_magnification,
)

LABELS = [
    # clean labels
    ("200 nm", Length(200, "nm")),
    ("1µm", Length(1, "µm")),
    ("2 μm", Length(2, "µm")),  # Greek mu U+03BC
    ("2 um", Length(2, "µm")),
    ("20mm", Length(20, "mm")),
    ("0.5 µm", Length(0.5, "µm")),
    ("1,5 µm", Length(1.5, "µm")),  # decimal comma
    ("0,5 µm", Length(0.5, "µm")),
    ("1,500 nm", Length(1500, "nm")),  # thousands comma
    ("100 nm.", Length(100, "nm")),
    ("  30 nm ", Length(30, "nm")),
    # µ misread (observed: see the table in length_text's docstring)
    ("10 pm", Length(10, "µm")),
    ("1 ym", Length(1, "µm")),
    ("2 yum", Length(2, "µm")),
    ("1pum", Length(1, "µm")),
    ("500 urn", Length(500, "µm")),  # the Helios fixture's label
    ("3 prn", Length(3, "µm")),
    ("300 ren", Length(300, "nm")),
    # digit look-alikes (observed)
    ("Tum", Length(1, "µm")),  # "1 µm" read as "Tum"
    ("Jum", Length(1, "µm")),
    ("lum", Length(1, "µm")),
    ("imm", Length(1, "mm")),  # "1mm" read as "imm"
    ("ium", Length(1, "µm")),
    ("tum", Length(1, "µm")),
    ("T00 nm", Length(100, "nm")),
    ("2O0 nm", Length(200, "nm")),
    ("1o µm", Length(10, "µm")),
    ("I0 µm", Length(10, "µm")),
    ("S00 pm", Length(500, "µm")),  # the Helios fixture's label again
    ("2S nm", Length(25, "nm")),
    ("Z0 µm", Length(20, "µm")),
    ("zmm", Length(2, "mm")),  # the drawn "2mm" as OCR read it (module docstring)
    ("z0 µm", Length(20, "µm")),
    # reported once, never seen by Tesseract on the instruments' fonts: refused
    ("5 µ m", None),
    ("5 u m", None),
    ("3 jum", None),
    ("3 pim", None),
    ("20 nrn", None),
    ("1 rnm", None),
    ("1 mrn", None),
    ("|00 nm", None),
    ("B0 nm", None),
    # seen in the demo's fixed-width faces (issue 12's failure study)
    ("2 yam", Length(2, "µm")),
    ("648 wm", Length(648, "µm")),
    ("200 om", Length(200, "nm")),
    ("20. 0nm", Length(20.0, "nm")),  # Hitachi's "20.0nm": a space after the decimal point
    ("1 .00um", Length(1.0, "µm")),  # ... and before it (DejaVu Sans Mono, 7 px: issue 12's failure study)
    ("5 .00nm", Length(5.0, "nm")),  # FreeMono, 7 px
    ("50. Oum", Length(50.0, "µm")),
    # one length among other words: the caller decides which field it is
    ("WD 6.2 mm", Length(6.2, "mm")),
    ("Scale: 500 nm", Length(500, "nm")),
    # refused
    ("", None),
    ("nm", None),
    ("µm", None),
    ("5 m", None),  # a bare m is never a unit
    ("5m", None),
    ("10m", None),  # "10 µm" with its µ lost
    ("20 1m", None),
    ("200 nm 100 nm", None),  # two lengths
    ("2 200 nm", None),  # another number besides the length
    ("-5 nm", None),  # negative
    ("0 nm", None),  # not positive
    ("0.0 µm", None),
    ("10 PM", None),  # units are case-sensitive
    ("3:45 pm", None),  # a time of day
    ("Sum", Length(5, "µm")),  # a lone S before a unit is a 5 (FreeSans, DejaVu Sans Mono at 7 px)
    ("S um", Length(5, "µm")),
    ("Zum", Length(2, "µm")),
    ("SS um", None),  # two look-alikes and no real digit
    ("lo µm", None),  # two look-alikes and no real digit
    ("Helium", None),
    ("200 nmM", None),  # unit followed by more letters
    ("2 umbrellas", None),
    ("2—um", None),  # a dash between number and unit
    ("12 kV", None),
    ("HV 5.00 kV", None),
]


@pytest.mark.parametrize(("text", "expected"), LABELS)
def test_parse_length(text, expected):
    assert parse_length(text) == expected


def test_length_in_nm():
    assert Length(200, "nm").nm == 200
    assert Length(1.5, "µm").nm == 1500
    assert Length(1, "mm").nm == 1_000_000


def test_find_lengths_on_multi_field_lines():
    assert find_lengths("HFW 198.0 µm  WD 6.2 mm") == [
        (Length(198.0, "µm"), (4, 12)),
        (Length(6.2, "mm"), (17, 23)),
    ]
    assert [length for length, _span in find_lengths("EHT = 5.00 kV  WD = 6.2 mm  Width = 198.0 um")] == [
        Length(6.2, "mm"),
        Length(198.0, "µm"),
    ]
    assert [length for length, _span in find_lengths("5.00 kV   4.1 mm   8 811 x   14.41 µm   ETD")] == [
        Length(4.1, "mm"),
        Length(14.41, "µm"),
    ]
    assert find_lengths("HV: 5.00 kV  Mag: 1.20 K X  Time: 10:32:05") == []
    assert find_lengths("Date 12/03/2015  Det InLens") == []


MAGNIFICATIONS = [
    ("Mag = 98.60 K X", 98_600.0),
    ("25.00 KX", 25_000.0),
    ("8 811 x", 8_811.0),
    ("x 5,000", 5_000.0),
    ("Mag: 1.20 kx", 1_200.0),
    ("500x", 500.0),
    ("Mag 44.19 kK X", 44_190.0),
    ("500 X", 500.0),
    ("× 250", 250.0),
    ("1,20 kx", 1_200.0),
    ("mag = 1 234 x", 1_234.0),
    ("SE x22.2k SE(U)", 22_200.0),  # Hitachi: x before the number, k after
    ("S-4700 20.0kV 8.5mm x3.97k SE(U)", 3_970.0),
    ("#10.8k", 10_800.0),  # Hitachi's small x read as #
    ("x575 SE(U)", 575.0),
    ("X93 , 000", 93_000.0),  # JEOL "X93,000" with OCR's spaces around the comma
    ("X7 ,690", 7_690.0),
    ("K377,000", 377_000.0),  # JEOL "X377,000" in FreeMono at 8 px (issue 12's failure study)
    ("K 25", None),  # a K stands for the X before comma-grouped thousands only
    ("3.0kV K5", None),
    ("X11?", None),  # "X117" with its last digit misread: not 11
    ("x5kV", None),
    ("x 5 mm", None),
    ("mag", None),
    ("HV 5.00 kV", None),
    ("WD 6.2 mm", None),
    ("Max 3", None),
    ("0 x", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), MAGNIFICATIONS)
def test_parse_magnification(text, expected):
    assert parse_magnification(text) == expected


def test_parse_fields_zeiss_style():
    fields = parse_fields(
        ["EHT = 5.00 kV   WD = 6.2 mm   Mag = 98.60 K X", "Width = 198.0 µm   Signal A = InLens", "200 nm"]
    )
    assert fields == StripeFields(
        [("wd", Length(6.2, "mm")), ("width", Length(198.0, "µm")), (None, Length(200, "nm"))], 98_600.0
    )


def test_parse_fields_plain_style_and_pixel_size():
    fields = parse_fields(["HV: 5.00 kV  WD: 6.2 mm", "hfw: 198.0 um  Pixel Size: 3.1 nm", "Mag: 500 X"])
    assert fields.lengths == [
        ("wd", Length(6.2, "mm")),
        ("hfw", Length(198.0, "µm")),
        ("pixel_size", Length(3.1, "nm")),
    ]
    assert fields.magnification == 500.0


def test_parse_fields_fei_names_over_values():
    fields = parse_fields(["HV   WD   mag   HFW   det", "5.00 kV   6.2 mm   8 811 x   198.0 µm   ETD"])
    assert fields.lengths == [(None, Length(6.2, "mm")), (None, Length(198.0, "µm"))]
    assert fields.magnification == 8_811.0


def test_parse_fields_name_must_be_next_to_the_value():
    fields = parse_fields(["WD 5.00 kV 6.2 mm", "", "no numbers here"])
    assert fields == StripeFields([(None, Length(6.2, "mm"))], None)
