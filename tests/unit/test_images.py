"""Images in the framed message (domain/images.py): inline parts placed, beacons dropped, small
signature images folded, remote ones counted and left to the frame's policy."""

from __future__ import annotations

from mailbridge.domain import images
from mailbridge.domain.parsing import parse_message, sanitize_html
from tests.images import png, related_message


def test_pixel_sizes_are_read_from_png_gif_and_jpeg_headers():
    assert images.dimensions(png(320, 200)) == (320, 200)
    assert images.dimensions(b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20) == (1, 1)
    jpeg = b"\xff\xd8" + b"\xff\xe0\x00\x04\x00\x00" + b"\xff\xc0\x00\x11\x08\x00\x50\x01\x40" + b"\x00" * 12
    assert images.dimensions(jpeg) == (320, 80)
    assert images.dimensions(b"not an image") is None


def test_sizes_decide_tracking_small_and_normal():
    assert images.kind((1, 1)) == "tracking"
    assert images.kind((40, 20)) == "small"
    assert images.kind((320, 200)) == "normal"
    assert images.kind(None) == "normal"
    assert images.size_of({"width": "1", "height": "1px"}, (500, 500)) == (1, 1)


def test_a_related_message_gets_its_screenshot_in_place_its_logo_folded_and_its_beacon_dropped():
    parsed = parse_message(related_message("ann@customer.example", "help@acme.example", "Error",
                                           "https://tracker.example/banner.png"))
    by_name = {a.filename: a for a in parsed.attachments}
    sizes = {"screenshot.png": (320, 200), "logo.png": (40, 20), "b.png": (1, 1)}
    inline = {by_name[name].content_id.lower(): {"url": f"/admin/inline/{name}", "size": size}
              for name, size in sizes.items()}
    html, counts = images.frame_html(sanitize_html(parsed.html), inline, show_remote=False)
    assert counts == {"inline": 2, "tracking": 1, "small": 1, "remote": 1}
    assert 'src="/admin/inline/screenshot.png"' in html and "cid:" not in html
    assert '<details class="small-image"><summary>small image (40×20)</summary><img src="/admin/inline/logo.png"' in html
    assert "b.png" not in html
    assert 'src="https://tracker.example/banner.png"' in html  # left to the frame's policy
    assert images.remote_count(html) == 1


def test_an_unknown_content_id_and_a_remote_beacon():
    html, counts = images.frame_html('<img src="cid:nothing"><img src="https://t.example/p.gif" width="1" height="1">',
                                     {}, show_remote=True)
    assert html == '<img src="cid:nothing">' and counts["tracking"] == 1
