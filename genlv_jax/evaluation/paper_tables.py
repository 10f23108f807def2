"""The journal's Tables VI–IX ("GenLV: scalable unified modeling"): per GLV-Bench task the
values of GenLV-Base, -Large and -Huge, the group's reference model and, where one was trained,
the specialist model — PSNR / SSIM for restoration (VI) and enhancement (VII), LPIPS for
stylization (VIII), MAE on the 0–255 scale for feature extraction (IX).

Transcribed row by row from the journal's tables ("-": no specialist model). Three cells were
illegible in the text we transcribed from and are left unknown ("?"): GenLV-Large on Weather SR
and Cosmology SR, and the reference model's PSNR on Weather SR; the decimal points lost in the
MRI SR, Face SR, Weather SR and Cosmology SR rows are restored.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Union

from genlv_jax.tasks import get_task

COLUMNS = ("base", "large", "huge", "reference", "specialist")
COLUMN_TITLES = {"base": "GenLV-Base", "large": "GenLV-Large", "huge": "GenLV-Huge",
                 "reference": "reference model", "specialist": "specialist model"}
# What each table reports (the metric keys of `evaluation.metrics` / `evaluator`).
TABLE_METRICS = {"VI": ("psnr", "ssim"), "VII": ("psnr", "ssim"), "VIII": ("lpips",),
                 "IX": ("mae",)}
TABLE_TITLES = {"VI": "restoration", "VII": "enhancement", "VIII": "stylization",
                "IX": "feature extraction"}

Value = Optional[Union[float, tuple[Optional[float], Optional[float]]]]

# index | paper name | GenLV-Base | GenLV-Large | GenLV-Huge | reference | specialist
_TABLES = {
    "VI": """
0 | SRx4 | 24.46/0.732 | 24.68/0.739 | 24.82/0.747 | 25.44/0.770 | 25.94/0.789
1 | Satellite SR | 32.42/0.908 | 32.55/0.910 | 32.68/0.912 | 33.56/0.924 | -
2 | CT SR | 31.68/0.856 | 32.13/0.862 | 32.74/0.867 | 34.06/0.878 | 32.84/0.866
3 | Infrared SR | 34.68/0.913 | 34.74/0.914 | 34.93/0.915 | 35.49/0.923 | -
4 | MRI SR | 33.14/0.917 | 33.67/0.917 | 34.05/0.926 | 35.64/0.947 | -
5 | Face SR | 35.56/0.953 | 35.78/0.954 | 35.99/0.955 | 36.57/0.959 | -
6 | Weather SR | 45.21/0.992 | ? | 46.11/0.994 | ?/0.996 | -
7 | Cosmology SR | 50.07/0.992 | ? | 51.14/0.999 | 52.89/0.990 | -
8 | Fluid Flow SR | 48.43/0.998 | 48.34/0.998 | 51.81/0.999 | 58.60/0.999 | -
9 | Jitter Deblurring | 23.43/0.700 | 23.64/0.710 | 23.74/0.716 | 24.56/0.747 | -
10 | Glass Deblurring | 23.68/0.703 | 24.04/0.712 | 24.13/0.718 | 25.00/0.744 | -
11 | Gaussian Deblurring | 26.39/0.768 | 26.99/0.781 | 27.42/0.794 | 28.44/0.815 | 29.05/0.831
12 | Lens Deblurring | 26.59/0.811 | 28.09/0.852 | 29.31/0.882 | 34.12/0.945 | -
13 | Motion Deblurring | 26.49/0.842 | 27.50/0.870 | 27.99/0.879 | 35.41/0.965 | -
14 | Zoom Deblurring | 27.16/0.873 | 28.80/0.903 | 29.10/0.909 | 37.25/0.971 | -
15 | Spatially Correlated Denoising | 27.56/0.840 | 27.95/0.848 | 28.28/0.855 | 29.83/0.888 | -
16 | Gaussian Denoising | 28.62/0.859 | 28.97/0.865 | 29.21/0.870 | 30.27/0.895 | -
17 | Speckle Denoising | 29.17/0.885 | 29.47/0.891 | 29.85/0.898 | 31.04/0.918 | -
18 | Poisson Denoising | 29.74/0.892 | 30.03/0.896 | 30.30/0.901 | 31.25/0.917 | 31.37/0.918
19 | Satellite Denoising | 32.81/0.902 | 32.94/0.903 | 33.02/0.904 | 33.77/0.918 | 33.60/0.916
20 | CT Denoising | 36.53/0.932 | 36.64/0.932 | 36.78/0.933 | 36.69/0.933 | -
21 | MRI Denoising | 36.49/0.947 | 36.51/0.942 | 36.69/0.945 | 37.40/0.958 | -
22 | Impulse Denoising | 34.64/0.961 | 38.71/0.978 | 41.45/0.989 | 55.10/0.999 | -
23 | Inpainting | 28.37/0.935 | 28.92/0.940 | 29.32/0.945 | 30.41/0.953 | 31.25/0.959
24 | SRx2 | 29.65/0.905 | 30.01/0.910 | 30.29/0.914 | 30.96/0.922 | -
25 | Ringing Removal | 29.04/0.888 | 29.90/0.905 | 30.50/0.915 | 33.29/0.949 | -
26 | Lucy-Richardson Deconvolution | 31.46/0.934 | 33.03/0.950 | 34.09/0.959 | 37.14/0.975 | -
27 | Simple Deraining | 29.86/0.943 | 31.27/0.956 | 32.08/0.963 | 37.34/0.984 | -
28 | Demosaicing | 35.32/0.971 | 35.96/0.975 | 36.81/0.978 | 38.08/0.983 | -
29 | Pixelation Removal | 25.60/0.779 | 25.86/0.786 | 26.06/0.793 | 27.16/0.825 | -
30 | JPEG Restoration | 26.32/0.809 | 26.53/0.815 | 26.64/0.817 | 27.45/0.836 | -
31 | JPEG 2000 Restoration | 26.93/0.808 | 27.15/0.814 | 27.24/0.816 | 28.08/0.834 | -
32 | Quantization (OTSU) Restoration | 26.71/0.909 | 26.28/0.912 | 26.76/0.916 | 28.57/0.927 | -
33 | Quantization (Hist) Restoration | 25.72/0.900 | 26.45/0.906 | 26.53/0.910 | 31.11/0.929 | -
34 | Quantization (Median) Restoration | 28.58/0.886 | 28.55/0.886 | 28.62/0.886 | 32.65/0.942 | -
35 | Oversharpen Restoration | 33.76/0.982 | 34.90/0.986 | 35.60/0.988 | 38.21/0.992 | 38.21/0.992
36 | Spatter Removal | 34.36/0.974 | 36.16/0.981 | 37.74/0.987 | 47.20/0.998 | 47.20/0.998
37 | Dehazing | 29.89/0.973 | 31.22/0.978 | 32.09/0.981 | 18.94/0.862 | 31.90/0.982
38 | Desnowing | 32.47/0.946 | 33.34/0.955 | 34.41/0.962 | 22.62/0.871 | -
39 | Complex Deraining | 26.59/0.878 | 27.34/0.885 | 27.81/0.891 | 23.13/0.816 | 26.66/0.882
40 | Raindrop Removal | 26.15/0.873 | 25.73/0.868 | 26.24/0.871 | 25.36/0.862 | -
41 | Cloud Removal | 28.97/0.866 | 29.76/0.873 | 30.11/0.878 | 26.05/0.824 | -
42 | Dust Removal | 27.56/0.867 | 27.67/0.872 | 27.97/0.873 | 28.14/0.857 | -
43 | Marine Snow Removal | 32.03/0.946 | 32.72/0.952 | 33.14/0.955 | 30.25/0.934 | -
44 | Reflection Removal | 29.47/0.955 | 30.06/0.961 | 31.52/0.969 | 20.48/0.872 | -
45 | Real Lowlight SR | 23.94/0.813 | 24.50/0.821 | 25.46/0.827 | 21.85/0.779 | -
46 | Shadow Removal | 30.34/0.912 | 31.18/0.917 | 31.19/0.915 | 23.53/0.867 | -
47 | Flare Removal | 32.61/0.971 | 33.29/0.974 | 33.92/0.977 | 26.25/0.930 | -
48 | Highlight Removal | 35.21/0.973 | 36.03/0.975 | 36.40/0.975 | 29.31/0.951 | 33.90/0.969
49 | UDC (Poled) Restoration | 34.54/0.936 | 35.05/0.942 | 35.36/0.945 | 30.44/0.911 | -
50 | Demoireing | 36.20/0.969 | 37.33/0.976 | 38.19/0.980 | 34.00/0.944 | 39.86/0.985
51 | UDC (Toled) Restoration | 41.14/0.983 | 41.64/0.985 | 42.06/0.986 | 34.67/0.932 | -
52 | Watermark Removal | 31.15/0.971 | 31.27/0.972 | 31.37/0.972 | 31.54/0.973 | 31.54/0.973
""",
    "VII": """
0 | Saturation Strengthening Correction | 29.41/0.936 | 29.15/0.935 | 30.58/0.945 | 29.70/0.938 | -
1 | Contrast Strengthening Correction | 28.94/0.934 | 30.05/0.942 | 30.32/0.944 | 30.27/0.940 | -
2 | Brightness Darkening Correction | 38.75/0.962 | 39.30/0.965 | 40.43/0.966 | 35.37/0.953 | -
3 | Saturation Weakening Correction | 38.86/0.974 | 39.51/0.975 | 38.89/0.974 | 35.55/0.963 | -
4 | Brightness Brightening Correction | 40.11/0.981 | 39.88/0.981 | 41.86/0.984 | 35.92/0.973 | 36.80/0.973
5 | Contrast Weakening Correction | 38.87/0.991 | 40.86/0.993 | 41.84/0.994 | 40.98/0.991 | -
6 | RAW-to-RGB (ISP) | 21.15/0.751 | 21.23/0.755 | 21.53/0.756 | 19.77/0.718 | -
7 | Exposure Correction | 25.42/0.913 | 26.50/0.921 | 26.00/0.919 | 20.96/0.851 | -
8 | Lowlight Enhancement | 23.33/0.891 | 23.77/0.898 | 23.52/0.896 | 22.38/0.888 | 23.03/0.888
9 | Vignetting Removal | 23.90/0.896 | 24.66/0.901 | 24.77/0.905 | 22.42/0.893 | -
10 | Backlit Enhancement | 26.79/0.949 | 26.82/0.950 | 27.18/0.951 | 24.89/0.941 | -
11 | White Balance Correction | 36.50/0.974 | 36.80/0.975 | 37.17/0.976 | 29.23/0.949 | -
12 | Instagram Filter Addition | 35.06/0.966 | 35.57/0.967 | 35.96/0.969 | 20.24/0.894 | -
13 | Underwater Histogram Equalization | 33.73/0.978 | 33.95/0.981 | 34.29/0.981 | 21.34/0.873 | -
14 | Photo Retouching | 26.43/0.931 | 27.51/0.936 | 27.50/0.937 | 23.43/0.900 | 23.86/0.910
15 | Instagram Filter Removal | 33.19/0.960 | 33.61/0.961 | 33.63/0.961 | 26.71/0.939 | -
16 | Color Correction | 35.31/0.988 | 36.34/0.989 | 36.51/0.990 | 27.13/0.949 | -
17 | SDR-to-HDR | 37.30/0.976 | 37.71/0.977 | 37.55/0.978 | 31.23/0.926 | -
18 | HDR-to-SDR | 36.28/0.964 | 36.82/0.968 | 37.05/0.970 | 31.99/0.920 | -
19 | Local Lapplacian Filtering | 30.96/0.952 | 31.35/0.954 | 31.56/0.955 | 21.47/0.720 | -
20 | Multi-Scale TM | 34.10/0.964 | 34.41/0.965 | 34.57/0.965 | 21.77/0.768 | -
21 | Bokeh Rendering | 25.08/0.836 | 25.46/0.844 | 25.58/0.845 | 24.31/0.808 | -
""",
    "VIII": """
0 | Impressionism | 0.3126 | 0.2652 | 0.2524 | 0.3129 | -
1 | Monet | 0.2816 | 0.2335 | 0.2202 | 0.2628 | -
2 | NeoImpressionism | 0.2695 | 0.2264 | 0.2165 | 0.2536 | -
3 | Cloisonnism | 0.2435 | 0.1865 | 0.1770 | 0.2179 | 0.3495
4 | Divisionism | 0.2190 | 0.1881 | 0.1782 | 0.2152 | -
5 | Fauvism | 0.2073 | 0.1763 | 0.1672 | 0.2114 | -
6 | VanGogh | 0.2164 | 0.1851 | 0.1759 | 0.2076 | -
7 | Raphael | 0.2132 | 0.1775 | 0.1690 | 0.2051 | -
8 | Vermeer | 0.1703 | 0.1434 | 0.1378 | 0.2018 | -
9 | Tuner | 0.2053 | 0.1717 | 0.1647 | 0.1976 | -
10 | Regionalism | 0.2049 | 0.1676 | 0.1590 | 0.1930 | -
11 | JOJO | 0.1832 | 0.1637 | 0.1551 | 0.1877 | -
12 | Ukiyoe | 0.1771 | 0.1522 | 0.1449 | 0.1762 | -
13 | PopArt | 0.1620 | 0.1350 | 0.1260 | 0.1734 | -
14 | Modernism | 0.1551 | 0.1293 | 0.1219 | 0.1624 | -
15 | Photographic | 0.0737 | 0.0732 | 0.0743 | 0.4574 | -
16 | PencilDrawing | 0.0543 | 0.0465 | 0.0447 | 0.4074 | -
17 | RTV | 0.0210 | 0.0154 | 0.0138 | 0.2432 | 0.0158
""",
    "IX": """
0 | DepthEstimate | 40.36 | 38.49 | 39.78 | 45.51 | -
1 | Normal | 37.99 | 35.29 | 37.42 | 42.69 | -
2 | Canny | 8.25 | 5.67 | 4.44 | 36.46 | 2.73
3 | SaliencyObject | 10.84 | 10.27 | 10.59 | 26.72 | -
4 | HEDBoundary | 11.47 | 10.63 | 10.39 | 10.54 | -
5 | PercepEdgeDetect | 7.61 | 7.76 | 7.75 | 7.44 | -
6 | Laplacian | 1.27 | 1.22 | 1.17 | 5.24 | -
7 | HoughLine | 9.79 | 9.79 | 9.79 | 10.30 | 10.30
""",
}


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One row of Tables VI–IX: `values[column]` is (PSNR, SSIM) for VI/VII, a number for
  VIII/IX, None where the table has none."""
  table: str
  index: int
  paper_name: str
  values: dict[str, Value]

  @property
  def metrics(self) -> tuple[str, ...]:
    return TABLE_METRICS[self.table]


def _number(text: str) -> Optional[float]:
  text = text.strip()
  return None if text in ("-", "?", "") else float(text)


def _cell(text: str, table: str) -> Value:
  if text.strip() == "-":
    return None
  if len(TABLE_METRICS[table]) == 2:
    psnr, _, ssim = text.partition("/")  # `28.62/0.859`
    return _number(psnr), _number(ssim) if ssim else None
  return _number(text)


@functools.lru_cache(maxsize=None)
def paper_rows() -> dict[str, PaperRow]:
  """{catalogue task name: its row}, for the 101 tasks."""
  rows = {}
  for table, text in _TABLES.items():
    for line in text.strip().splitlines():
      fields = [f.strip() for f in line.split("|")]
      index, name, cells = int(fields[0]), fields[1], fields[2:]
      task = get_task(name)
      if (task.table, task.index) != (table, index):
        raise AssertionError(f"Table {table} row {index} {name!r} is {task.table} "
                             f"#{task.index} in the catalogue")
      rows[task.name] = PaperRow(table, index, name, {
          column: _cell(cells[i], table) if i < len(cells) else None
          for i, column in enumerate(COLUMNS)})
  return rows


def paper_value(task: str, column: str = "huge") -> Value:
  """The journal's value of `task` in `column` (None: not in the tables, or no value)."""
  row = paper_rows().get(task)
  return None if row is None else row.values.get(column)
