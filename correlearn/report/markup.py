"""HTML building blocks of the report: escaping, embedded PNG figures, markdown tables as HTML.

Pictures are embedded as base64 ``data:`` URIs so that the report is one self-contained file;
large ones are downscaled and palette-quantised to keep it small.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

MAX_WIDTH = 960  # pixels: wider pictures are downscaled
SMALL_PNG = 200_000  # bytes: smaller PNGs are embedded untouched


def esc(v: Any) -> str:
    """HTML-escaped text of a value (None is empty)."""
    return html.escape("" if v is None else str(v))


def fmt3(v: Any) -> str:
    """A number with three decimals, ``-`` for anything else (a missing metric)."""
    return f"{v:.3f}" if isinstance(v, int | float) else "-"


def png_uri(data: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_data_uri(path: str | Path, max_width: int = MAX_WIDTH) -> str | None:
    """A PNG data URI of an image file (downscaled when large); None if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            if im.format == "PNG" and len(raw) <= SMALL_PNG and im.width <= max_width:
                data = raw
            else:
                img = im.convert("RGB")
                if img.width > max_width:
                    img = img.resize(
                        (max_width, max(1, round(img.height * max_width / img.width))),
                        Image.Resampling.LANCZOS,
                    )
                buf = io.BytesIO()
                img.quantize(256).save(buf, "PNG")
                data = buf.getvalue()
    except Exception:  # noqa: BLE001 - a picture that PIL cannot read is left out, not fatal
        return None
    return png_uri(data)


def figure(uri: str | None, caption: str) -> str:
    """A ``<figure>`` of a data URI with its caption (a note when the picture was unreadable)."""
    if uri is None:
        return f'<figure><p class="muted">{esc(caption)}: unreadable</p></figure>'
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def markdown_table_html(md: str) -> str:
    """A markdown pipe table (as :func:`correlearn.demo_tables.demo_table` writes) as HTML."""
    lines = [ln.strip() for ln in md.strip().splitlines() if ln.strip().startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    cells = [c for c in cells if not all(set(x) <= {"-", ":"} for x in c)]
    if not cells:
        return ""
    head = "".join(f"<th>{esc(c)}</th>" for c in cells[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in cells[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
