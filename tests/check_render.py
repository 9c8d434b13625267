#!/usr/bin/python3
"""Check the pictures of `attrib render` against the results and the data,
recomputed here in numpy (docs/pictures.md defines them). The PNG is decoded
by the small reader below (zlib and the five PNG filters), not by the
library that wrote it.

usage:
  check_render.py attr PNG RESULTS METHOD S0 S1 COLS ZOOM DATA [sample|shared] [POINT]
  check_render.py infl PNG RESULTS METHOD S0 S1 ZOOM DATA [TOP]
  check_render.py blank PNG                  (a picture with heatmap colours)
  check_render.py sweep OUT.h5 RESULTS.h5    (a two-point sweep file of RESULTS)
  check_render.py report DIR RESULTS.h5      (index.html: links, numbers)
Exit 0 when every check passes, 1 with the failures listed.
"""
import struct
import sys
import zlib

import h5py
import numpy as np

PAD, GAP, BAR_H, FRAME = 8, 2, 12, 2
NEG, POS, TEST = (33, 102, 172), (178, 24, 43), (64, 64, 64)
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL", msg)


def read_png(path):
    """8-bit RGB or RGBA, non-interlaced PNG -> (H, W, 3) uint8."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{path}: bad CRC in {kind}"
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"{path}: unsupported {hdr}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        if f == 0:
            cur = line.copy()
        elif f == 2:
            cur = (line + prev) & 255
        else:
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) >> 1
                else:  # Paeth
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def read_png_libpng(path):
    """(H, W, 3) uint8 through libpng's simplified API (ctypes): for the
    screenshots, which Chromium writes (the reader above is independent of
    the library attrib writes with, but slow on 1200 x 2000 pictures)."""
    import ctypes
    import ctypes.util

    lib = ctypes.CDLL(ctypes.util.find_library("png16") or "libpng16.so.16")

    class Image(ctypes.Structure):
        _fields_ = [("opaque", ctypes.c_void_p), ("version", ctypes.c_uint32),
                    ("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                    ("format", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                    ("colormap_entries", ctypes.c_uint32),
                    ("warning_or_error", ctypes.c_uint32), ("message", ctypes.c_char * 64)]

    im = Image(version=1)  # PNG_IMAGE_VERSION
    if not lib.png_image_begin_read_from_file(ctypes.byref(im), path.encode()):
        raise RuntimeError(f"{path}: {im.message.decode()}")
    im.format = 2  # PNG_FORMAT_RGB
    buf = np.zeros((im.height, im.width, 3), dtype=np.uint8)
    if not lib.png_image_finish_read(ctypes.byref(im), None, buf.ctypes.data_as(ctypes.c_void_p),
                                     0, None):
        raise RuntimeError(f"{path}: {im.message.decode()}")
    return buf


def zoomed(img, z):
    return np.repeat(np.repeat(img, z, axis=0), z, axis=1)


def gray(img):
    return np.rint(255.0 * np.clip(img.astype(np.float64), 0, 1))


def cmap(t):
    """(..) in [-1, 1] -> (.., 3): white at 0, linear to NEG / POS."""
    a = np.clip(np.abs(t), 0, 1)[..., None]
    end = np.where((t < 0)[..., None], np.array(NEG, float), np.array(POS, float))
    return 255.0 + a * (end - 255.0)


def robust_max(s):
    a = np.sort(np.abs(np.nan_to_num(s.astype(np.float32), nan=0, posinf=0, neginf=0)).ravel())
    m = float(a[int(np.floor(0.99 * (a.size - 1)))])
    if not m > 0:
        m = float(a[-1])
    return m if m > 0 else 1.0


def open_view(path, point):
    f = h5py.File(path, "r")
    return f, (f[f"points/{point}"] if point else f)


def check_attr(png, results, method, s0, s1, cols, z, data, scale="sample", point=None):
    s0, s1, cols, z = int(s0), int(s1), int(cols), int(z)
    pic = read_png(png)
    f, v = open_view(results, point)
    scores = v[f"attributions/{method}/scores"][s0:s1]
    rows = v["sample"][s0:s1]
    split = v.attrs["data_split"]
    with h5py.File(data, "r") as d:
        u, inv = np.unique(rows, return_inverse=True)
        imgs = d[f"{split}/images"][u][inv]
    n, h, w = scores.shape
    cols = min(cols, n)
    nrows = -(-n // cols)
    cw, ch = 2 * w * z + GAP, h * z
    W, H = PAD + cols * (cw + PAD), PAD + nrows * (ch + PAD) + BAR_H + PAD
    if pic.shape[:2] != (H, W):
        fail(f"size {pic.shape[1]}x{pic.shape[0]}, expected {W}x{H}")
        return
    shared = robust_max(scores)
    for k in range(n):
        x0 = PAD + (k % cols) * (cw + PAD)
        y0 = PAD + (k // cols) * (ch + PAD)
        inp = pic[y0:y0 + ch, x0:x0 + w * z]
        want = zoomed(gray(imgs[k]), z)
        for c in range(3):
            if not np.array_equal(inp[:, :, c].astype(float), want):
                fail(f"sample {s0 + k}: input panel channel {c} differs from the data image "
                     f"(max diff {np.abs(inp[:, :, c] - want).max()})")
                break
        ov = pic[y0:y0 + ch, x0 + w * z + GAP:x0 + 2 * w * z + GAP].astype(int)
        s = scores[k].astype(np.float64)
        # the sign at the most positive and most negative score
        for idx, sign in ((np.argmax(s), 1), (np.argmin(s), -1)):
            yy, xx = divmod(int(idx), w)
            m = shared if scale == "shared" else robust_max(scores[k])
            if sign * s[yy, xx] / m < 0.05:  # no colour to see (shared scale)
                continue
            block = ov[yy * z:(yy + 1) * z, xx * z:(xx + 1) * z]
            r, b = block[:, :, 0], block[:, :, 2]
            if sign > 0 and not (r > b).all():
                fail(f"sample {s0 + k}: most positive score at ({yy},{xx}) is not red: {block[0, 0]}")
            if sign < 0 and not (b > r).all():
                fail(f"sample {s0 + k}: most negative score at ({yy},{xx}) is not blue: {block[0, 0]}")
        # the whole overlay, recomputed (libm rounding may differ by 1)
        m = shared if scale == "shared" else robust_max(scores[k])
        t = np.clip(np.nan_to_num(s, nan=0, posinf=0, neginf=0) / m, -1, 1)
        a = 0.9 * np.abs(t)[..., None]
        g = gray(imgs[k])[..., None]
        want_ov = np.clip(np.rint((1 - a) * g + a * cmap(t)), 0, 255)
        diff = np.abs(ov - zoomed(want_ov, z)).max()
        if diff > 1:
            fail(f"sample {s0 + k}: overlay differs from the recomputed one by {diff}")
    bar = pic[H - PAD - BAR_H:H - PAD, PAD:W - PAD].astype(int)
    if not (tuple(bar[0, 0]) == NEG and tuple(bar[0, -1]) == POS):
        fail(f"colour bar ends {bar[0, 0]} .. {bar[0, -1]}, expected {NEG} .. {POS}")
    print(f"attr: {n} samples, {W}x{H}, overlays and inputs match")


def check_infl(png, results, method, s0, s1, z, data, top=0):
    s0, s1, z, top = int(s0), int(s1), int(z), int(top)
    pic = read_png(png)
    f = h5py.File(results, "r")
    m = f[f"influence/{method}"]
    topk, opp = m["topk_index"][s0:s1], m["opponents_index"][s0:s1]
    test_rows = f["test"][s0:s1]
    # independently: the top-k are the highest scores' train rows
    sc = m["scores"][s0:s1]
    if not np.array_equal(topk[:, 0], f["train"][()][np.argmax(sc, axis=1)]):
        fail("topk_index[:, 0] is not the argmax of the scores (the fixture is wrong)")
    K = topk.shape[1] if top <= 0 else min(top, topk.shape[1])
    def rows_of(d, split, idx):  # {row: image} of the rows used only
        u = np.unique(idx)
        return dict(zip(u.tolist(), d[f"{split}/images"][u]))

    with h5py.File(data, "r") as d:
        test_imgs = rows_of(d, f.attrs["data_split"], test_rows)
        train_imgs = rows_of(d, f.attrs["train_split"], np.concatenate([topk, opp]).ravel())
    h, w = test_imgs[int(test_rows[0])].shape
    tw, th = w * z + 2 * FRAME, h * z + 2 * FRAME
    kb = K * tw + (K - 1) * GAP
    W, H = PAD + tw + 2 * (2 * PAD + kb) + PAD, PAD + (s1 - s0) * (th + PAD)
    if pic.shape[:2] != (H, W):
        fail(f"size {pic.shape[1]}x{pic.shape[0]}, expected {W}x{H}")
        return

    def tile(x0, y0, img, frame, what):
        t = pic[y0:y0 + th, x0:x0 + tw].astype(int)
        edge = np.concatenate([t[0], t[-1], t[:, 0], t[:, -1]])
        if not (edge == np.array(frame)).all():
            fail(f"{what}: frame is not {frame}")
        inner = t[FRAME:FRAME + h * z, FRAME:FRAME + w * z, 0]
        if not np.array_equal(inner, zoomed(gray(img), z)):
            fail(f"{what}: image differs from the data")

    for k in range(s1 - s0):
        y0 = PAD + k * (th + PAD)
        tile(PAD, y0, test_imgs[int(test_rows[k])], TEST, f"test {s0 + k}")
        x = PAD + tw + 2 * PAD
        for j in range(K):
            tile(x + j * (tw + GAP), y0, train_imgs[int(topk[k, j])], POS, f"test {s0 + k} proponent {j}")
        x += kb + 2 * PAD
        for j in range(K):
            tile(x + j * (tw + GAP), y0, train_imgs[int(opp[k, j])], NEG, f"test {s0 + k} opponent {j}")
    print(f"infl: {s1 - s0} test samples x {K} proponents and opponents, {W}x{H}, all match")


def check_blank(png):
    pic = read_png_libpng(png).reshape(-1, 3).astype(int)
    colours = len({tuple(p) for p in pic[:: max(1, len(pic) // 200000)]})
    nonwhite = float((pic.sum(axis=1) < 3 * 250).mean())
    red = int(((pic[:, 0] > pic[:, 2] + 60) & (pic[:, 0] > pic[:, 1] + 60)).sum())
    blue = int(((pic[:, 2] > pic[:, 0] + 60) & (pic[:, 2] > pic[:, 1] + 20)).sum())
    print(f"blank: {colours} colours, {nonwhite:.3f} non-white, {red} red and {blue} blue pixels")
    if colours < 200:
        fail(f"only {colours} distinct colours")
    if nonwhite < 0.05:
        fail(f"only {nonwhite:.3f} of the pixels are not white")
    if red < 100 or blue < 100:
        fail(f"heatmap colours missing: {red} red, {blue} blue pixels")


def make_sweep(out, results):
    """The sweep layout (docs/format.md): point n_steps=16 is RESULTS as it
    is, point n_steps=32 the same with every ig score scaled by 1 + 0.5 u,
    u uniform in [0, 1) (seed 0), so the two differ by a known amount."""
    names = ["n_steps=16", "n_steps=32"]
    with h5py.File(results, "r") as src, h5py.File(out, "w") as f:
        f.attrs["format"] = "attrib-results"
        f.attrs["format_version"] = 1
        f.attrs["content"] = "sweep"
        f.attrs["n_points"] = 2
        f.create_dataset("sweep/point", data=np.arange(2, dtype=np.int64))
        f.create_dataset("sweep/name", data=np.array(names, dtype=h5py.string_dtype()))
        f.create_dataset("sweep/methods.ig.n_steps", data=np.array(["16", "32"], dtype=h5py.string_dtype()))
        for name in names:
            g = f.create_group(f"points/{name}")
            for k, v in src.attrs.items():
                g.attrs[k] = v
            for k in src:
                src.copy(src[k], g, name=k)
        s = f["points/n_steps=32/attributions/ig/scores"]
        u = np.random.default_rng(0).random(s.shape, dtype=np.float32)
        s[...] = s[()] * (1 + 0.5 * u)


def cells(html, table_class):
    """Rows of td/th texts of the first <table class=X>."""
    import re
    i = html.index(f"<table class={table_class}>")
    t = html[i:html.index("</table>", i)]
    return [[re.sub("<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)]
            for r in re.findall(r"<tr>(.*?)</tr>", t, re.S)]


def check_report(d, results):
    import os
    import re
    html = open(os.path.join(d, "index.html"), encoding="utf-8").read()
    refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    for r in refs:
        if "://" in r or r.startswith("/"):
            fail(f"index.html references {r}: not a relative link")
        elif not os.path.isfile(os.path.join(d, r)):
            fail(f"index.html references {r}, which does not exist")
    if "<script" in html.lower():
        fail("index.html has a <script>")
    if "<link" in html.lower():
        fail("index.html has a <link> (the CSS must be inline)")
    f = h5py.File(results, "r")
    n_pics = len([r for r in refs if r.endswith(".png")])
    if f.attrs.get("content") == "sweep":
        # per method a row of points; Spearman 1 and relative L2 0 at point 0,
        # and at point 1 the relative L2 of the scores, recomputed here
        s0 = f["points/n_steps=16/attributions/ig/scores"][()].astype(np.float64)
        s1 = f["points/n_steps=32/attributions/ig/scores"][()].astype(np.float64)
        want = np.linalg.norm(s1 - s0) / np.linalg.norm(s0)
        i = html.index("<h3>ig along the sweep</h3>")
        rows = cells(html[i:], "num")
        got = float(rows[2][2])
        if rows[1][1:] != ["1", "0"] or abs(got - want) > 1e-3 * want:
            fail(f"sweep table of ig: {rows}, expected 1, 0 and relative L2 {want:.4g}")
        if n_pics != 2 * len(f["points/n_steps=16/attributions"]):
            fail(f"{n_pics} pictures, expected one per method and point")
    elif "influence" in f:
        if n_pics != len(f["influence"]):
            fail(f"{n_pics} pictures, expected {len(f['influence'])}")
    else:
        methods = list(f["attributions"])
        if n_pics != len(methods):
            fail(f"{n_pics} pictures, expected {len(methods)}")
        if "metrics" in f:
            rows = cells(html, "num")  # scores and completeness: mean |score|
            for r in rows[1:]:
                sc = f[f"attributions/{r[0]}/scores"][()].astype(np.float64)
                if abs(float(r[2]) - np.abs(sc).mean()) > 1e-3 * np.abs(sc).mean():
                    fail(f"mean |score| of {r[0]}: page {r[2]}, file {np.abs(sc).mean():.4g}")
            ag = cells(html, "agree")
            names = ag[0][1:]
            for i, a in enumerate(names):
                for j, b in enumerate(names):
                    g = f"metrics/{a}/agreement/{b}/spearman"
                    g2 = f"metrics/{b}/agreement/{a}/spearman"
                    v = f[g][()].mean() if g in f else (f[g2][()].mean() if g2 in f else None)
                    if a == b:
                        v = 1.0
                    txt = ag[1 + i][1 + j]
                    if v is None and txt != "–" or v is not None and abs(float(txt) - v) > 0.0051:
                        fail(f"agreement {a} vs {b}: page {txt}, file {v}")
            print(f"report: agreement {len(names)}x{len(names)} and mean |score| match the file")
    print(f"report: {len(refs)} links, all relative and present, {n_pics} pictures")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"attr": check_attr, "infl": check_infl, "blank": check_blank, "sweep": make_sweep,
     "report": check_report}[mode](*args)
    if FAILS:
        print(f"{len(FAILS)} failures")
        sys.exit(1)


main()
