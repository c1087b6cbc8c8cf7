"""Writes the fixtures of the data specs, so that they need neither torchvision nor ../shared:
  spec/fixtures/data/transforms.lua   torchvision 0.14's results for the deterministic transforms on small
                                      random images (resize, normalize, flips, rotation, colour adjustments,
                                      crops, padding modes, erasing, grayscale)
  spec/fixtures/data/png/*.png        PNGs written by PIL (16-bit gray, palette with transparency, gray+alpha,
                                      RGBA), besides the real CIFAR-10 PNGs copied from ../shared
  spec/fixtures/data/png_expected.lua the pixels PIL decodes from each of those PNGs
Run with Debian's torchvision:  /usr/bin/python3 tools/make_transform_fixtures.py"""
import glob
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

BILINEAR = T.InterpolationMode.BILINEAR
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "spec", "fixtures", "data")
torch.manual_seed(0)


def lua_tensor(t):
    t = t.detach().contiguous().float()
    shape = ", ".join(str(s) for s in t.shape)
    data = ", ".join("%.9g" % v for v in t.reshape(-1).tolist())
    return "{shape = {%s}, data = {%s}}" % (shape, data)


def transform_cases():
    rgb = torch.rand(3, 7, 9)
    gray = torch.rand(1, 6, 5)
    big = torch.rand(3, 16, 12)
    inputs = {"rgb": rgb, "gray": gray, "big": big}
    fill = [0.5, 0.2, 0.9]
    cases = {
        # Resize: exact sizes up and down, with and without antialias; an int resizes the smaller edge
        "resize_up": F.resize(rgb, [11, 13], antialias=False),
        "resize_up_aa": F.resize(rgb, [11, 13], antialias=True),
        "resize_down": F.resize(big, [5, 7], antialias=False),
        "resize_down_aa": F.resize(big, [5, 7], antialias=True),
        "resize_short_edge": F.resize(rgb, 5, antialias=True),
        "resize_gray": F.resize(gray, [3, 8], antialias=True),
        "normalize": F.normalize(rgb, [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
        "normalize_gray": F.normalize(gray, [0.5], [0.25]),
        "hflip": F.hflip(rgb),
        "vflip": F.vflip(rgb),
        # rotate, bilinear (torchvision's default is nearest): F.rotate without fill (zeros outside); with a
        # fill, RandomRotation's blending
        "rotate_30": F.rotate(rgb, 30.0, interpolation=BILINEAR),
        "rotate_m45_fill": F.rotate(rgb, -45.0, interpolation=BILINEAR, fill=fill),
        "rotate_90_fill0": F.rotate(rgb, 90.0, interpolation=BILINEAR, fill=[0.0, 0.0, 0.0]),
        "rotate_gray_17": F.rotate(gray, 17.0, interpolation=BILINEAR),
        "brightness": F.adjust_brightness(rgb, 1.5),
        "contrast": F.adjust_contrast(rgb, 0.6),
        "contrast_gray": F.adjust_contrast(gray, 1.3),
        "saturation": F.adjust_saturation(rgb, 1.7),
        "hue": F.adjust_hue(rgb, 0.2),
        "hue_negative": F.adjust_hue(rgb, -0.35),
        "color_jitter_fixed": T.ColorJitter(brightness=(0.7, 0.7))(rgb),
        "center_crop_5": F.center_crop(rgb, [5, 5]),
        "center_crop_4x8": F.center_crop(rgb, [4, 8]),
        "center_crop_pad": F.center_crop(rgb, [10, 12]),
        "pad_constant": F.pad(rgb, [1, 2, 3, 1], fill=0.5),
        "pad_edge": F.pad(rgb, [2, 1], padding_mode="edge"),
        "pad_reflect": F.pad(rgb, 2, padding_mode="reflect"),
        "pad_symmetric": F.pad(rgb, [3, 1], padding_mode="symmetric"),
        "crop_outside": F.crop(rgb, -1, 2, 5, 9),
        "erase": F.erase(rgb, 1, 2, 3, 4, torch.tensor(fill)[:, None, None]),
        "grayscale": F.rgb_to_grayscale(rgb),
        "grayscale3": F.rgb_to_grayscale(rgb, num_output_channels=3),
        "compose": T.Compose([T.Resize(6, antialias=True), T.CenterCrop(5), T.Normalize([0.5, 0.4, 0.3], [0.2, 0.3, 0.4])])(rgb),
    }
    with open(os.path.join(OUT, "transforms.lua"), "w") as f:
        f.write("-- written by tools/make_transform_fixtures.py with torchvision %s; do not edit\nreturn {\n"
                % torchvision.__version__)
        f.write("  inputs = {\n")
        for name, t in inputs.items():
            f.write("    %s = %s,\n" % (name, lua_tensor(t)))
        f.write("  },\n  outputs = {\n")
        for name, t in cases.items():
            f.write("    %s = %s,\n" % (name, lua_tensor(t)))
        f.write("  },\n}\n")


def png_cases():
    png_dir = os.path.join(OUT, "png")
    rng = np.random.default_rng(0)
    # PNGs from another encoder (PIL), of the colour types the CIFAR files do not cover
    Image.fromarray(rng.integers(0, 65536, (5, 7), dtype=np.uint16), mode="I;16").save(os.path.join(png_dir, "pil_gray16.png"))
    pal = Image.fromarray(rng.integers(0, 6, (6, 4), dtype=np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 100, 50, 0, 0, 0])
    pal.save(os.path.join(png_dir, "pil_palette_trns.png"), transparency=bytes([255, 128, 0, 255, 255, 7]))
    Image.fromarray(rng.integers(0, 256, (3, 5, 2), dtype=np.uint8), mode="LA").save(os.path.join(png_dir, "pil_gray_alpha.png"))
    Image.fromarray(rng.integers(0, 256, (4, 3, 4), dtype=np.uint8), mode="RGBA").save(os.path.join(png_dir, "pil_rgba.png"))

    lines = []
    for path in sorted(glob.glob(os.path.join(png_dir, "*.png"))):
        img = Image.open(path)
        if img.mode == "I;16" or img.mode == "I":
            raw = np.array(img).astype(np.uint32)
            pixels = ((raw * 255 + 32895) >> 16).astype(np.uint8)[:, :, None]  # libpng's 16-to-8 scaling
        elif img.mode == "P":
            pixels = np.array(img.convert("RGBA"))
        else:
            pixels = np.array(img)
            if pixels.ndim == 2:
                pixels = pixels[:, :, None]
        h, w, c = pixels.shape
        lines.append('  ["%s"] = {height = %d, width = %d, channels = %d, hex = "%s"},'
                     % (os.path.basename(path), h, w, c, pixels.tobytes().hex()))
    with open(os.path.join(OUT, "png_expected.lua"), "w") as f:
        f.write("-- written by tools/make_transform_fixtures.py with PIL %s: each PNG's pixels, rows of interleaved "
                "channels as hex; do not edit\nreturn {\n%s\n}\n" % (Image.__version__, "\n".join(lines)))


if __name__ == "__main__":
    transform_cases()
    png_cases()
