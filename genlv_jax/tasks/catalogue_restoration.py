"""GLV-Bench restoration tasks: the 53 rows of Table VI (large paper), in table order.

Severity ranges follow PromptGIP's operators (`lyh-18/PromptGIP`,
`dataset/lowlevel_PromtGIP_dataloader.py` → `evaluate/add_degradation_various.py`) wherever it
has the degradation, as the ACMMM paper does (§4.1 "Following PromptGIP"); the `reference` of
each `Severity` says where a range comes from. Tasks on domain images (satellite, CT, MRI, …)
synthesise the same degradation; `domain` names the clean data they should be fed
(AID [53], the SARS-CoV-2 CT-scan set [52], SuperBench [54], … of the large paper).
"""

from __future__ import annotations

from genlv_jax.tasks import blur, compression, noise, weather
from genlv_jax.tasks.registry import Severity, Task, degrade, fixed, paired

_PG = "PromptGIP add_degradation_various.py"

# ---- severity ranges ------------------------------------------------------------------------
GAUSSIAN_NOISE = Severity("sigma_255", 10.0, 50.0,
                          reference=f"{_PG} add_Gaussian_noise: level ~ U(10, 50) (/255)")
POISSON_NOISE = Severity("peak", 1000.0, 100.0, scale="log", reference=(
    f"{_PG} add_Poisson_noise: level 2, peak 10**2 = 100 (fixed; its commented-out range is "
    "10**U(2, 4)); ours: peak 10**3 (mild) → 10**2 (PromptGIP's level)"))
SALT_PEPPER = Severity("amount", 0.02, 0.10, reference=(
    f"{_PG} add_sp_noise: snr 0.95, i.e. 5 % of pixels, salt/pepper 50/50 (fixed); ours: "
    "2 % → 10 % around it"))
GAUSSIAN_BLUR = Severity("sigma", 2.0, 4.0,
                         reference=f"{_PG} iso_GaussianBlur: window 15, sigma ~ U(2, 4)")
JPEG = Severity("quality", 40.0, 10.0, integer=True,
                reference=f"{_PG} add_JPEG_noise: cv2 quality ~ randint(10, 40)")
RINGING = Severity("omega_c", 1.5, 0.9, reference=(
    f"{_PG} add_ringing: sinc kernel size 15 padded to 21, omega_c 1.2 (fixed); ours: "
    "1.5 → 0.9 rad around it (lower cutoff, stronger ringing)"))
RICHARDSON_LUCY = Severity("psf_size", 3.0, 7.0, integer=True, reference=(
    f"{_PG} r_l: skimage richardson_lucy, 5x5 box PSF, 1 iteration, 7 px linear_ramp pad "
    "(fixed); ours: box 3 → 7 px (severity 0.5 = PromptGIP's 5)"))
INPAINTING = Severity("strokes", 5.0, 10.0, integer=True, reference=(
    f"{_PG} inpainting: l_num ~ randint(5, 10), l_thick ~ randint(5, 10) px, white or black; "
    "ours: both tied to severity, thickness scaled by min(H, W)/256"))
RAIN = Severity("value", 40.0, 200.0, reference=(
    f"{_PG} add_rain: value ~ U(40, 200) (seed density), streak length randint(30, 41), angle "
    "randint(-45, 45), width in {3, 5, 7, 9, 11} (random per image)"))
SR4 = fixed("scale", 4.0, "SRx4 of Table VI (bicubic, antialiased)")
SR_DOMAIN = fixed("scale", 4.0, "ours: x4 like Group 1's SRx4 (the paper does not give the scale)")


def _t(name: str, paper: str, index: int, group: int, fn, severity: Severity,
       **kw) -> Task:
  return Task(name=name, paper_name=paper, category="restoration", source="procedural",
              severity=severity, table="VI", index=index, group=group, op=degrade(fn),
              monotonic=kw.pop("monotonic", not severity.fixed), **kw)


def _sr(name: str, paper: str, index: int, domain: str | None, dataset: str | None) -> Task:
  return _t(name, paper, index, 1, compression.bicubic_down_up,
            SR4 if domain is None else SR_DOMAIN, domain=domain, dataset=dataset,
            notes="input = bicubic x1/4 then bicubic x4 back to the HR size; target = clean")


def _p(name: str, paper: str, index: int, group: int, dataset: str, notes: str = "") -> Task:
  return paired(name, paper, "restoration", "VI", index, group, dataset, notes)


RESTORATION_TASKS: tuple[Task, ...] = (
    # Group 1: super-resolution on general and domain images.
    _sr("sr_x4", "SRx4", 0, None, None),
    _sr("satellite_sr", "Satellite SR", 1, "satellite", "AID aerial scenes [53]"),
    _sr("ct_sr", "CT SR", 2, "ct", "SARS-CoV-2 CT-scan dataset [52]"),
    _sr("infrared_sr", "Infrared SR", 3, "infrared", "infrared images"),
    _sr("mri_sr", "MRI SR", 4, "mri", "MRI slices"),
    _sr("face_sr", "Face SR", 5, "face", "face images"),
    _sr("weather_sr", "Weather SR", 6, "weather", "SuperBench weather fields [54]"),
    _sr("cosmology_sr", "Cosmology SR", 7, "cosmology", "SuperBench cosmology fields [54]"),
    _sr("fluid_flow_sr", "Fluid Flow SR", 8, "fluid_flow", "SuperBench fluid flow fields [54]"),
    # Group 2: deblurring.
    _t("jitter_deblurring", "Jitter Deblurring", 9, 2, blur.jitter_blur,
       Severity("amplitude", 2.0, 6.0, reference="ours: random-walk camera-jitter PSF, RMS "
                "extent 2 → 6 px")),
    _t("glass_deblurring", "Glass Deblurring", 10, 2, blur.glass_blur,
       Severity("delta", 1.0, 4.0, reference="ImageNet-C glass_blur (sigma, delta) from (0.7, 1) "
                "to (1.5, 4); ours: delta 1 → 4, sigma = 0.6 + 0.22·delta, 2 iterations")),
    _t("gaussian_deblurring", "Gaussian Deblurring", 11, 2, blur.gaussian_blur, GAUSSIAN_BLUR),
    _t("lens_deblurring", "Lens Deblurring", 12, 2, blur.defocus_blur,
       Severity("radius", 1.5, 5.0, reference="ours: defocus disk radius 1.5 → 5 px "
                "(ImageNet-C defocus uses 3–10 px at 224 px, too strong to recover)")),
    _t("motion_deblurring", "Motion Deblurring", 13, 2, blur.motion_blur,
       Severity("length", 5.0, 21.0, reference="ours: linear motion 5 → 21 px, random angle")),
    _t("zoom_deblurring", "Zoom Deblurring", 14, 2, blur.zoom_blur,
       Severity("max_zoom", 1.06, 1.20, reference="ImageNet-C zoom_blur zooms up to 1.11–1.33; "
                "ours: 1.06 → 1.20, 8 steps, centre jittered by ±10 %")),
    # Group 3: denoising.
    _t("spatially_correlated_denoising", "Spatially Correlated Denoising", 15, 3,
       noise.correlated_noise,
       Severity("sigma_255", 10.0, 40.0, reference="ours: Gaussian noise low-passed by a "
                "Gaussian kernel of sigma 1 px, marginal std 10 → 40 /255")),
    _t("gaussian_denoising", "Gaussian Denoising", 16, 3, noise.gaussian_noise, GAUSSIAN_NOISE),
    _t("speckle_denoising", "Speckle Denoising", 17, 3, noise.speckle_noise,
       Severity("sigma", 0.1, 0.4, reference="ImageNet-C speckle_noise c ∈ [0.15, 0.6]; "
                "ours 0.1 → 0.4")),
    _t("poisson_denoising", "Poisson Denoising", 18, 3, noise.poisson_noise, POISSON_NOISE),
    _t("satellite_denoising", "Satellite Denoising", 19, 3, noise.gaussian_noise,
       GAUSSIAN_NOISE, domain="satellite", dataset="AID aerial scenes [53]"),
    _t("ct_denoising", "CT Denoising", 20, 3, noise.poisson_gaussian_noise,
       Severity("peak", 1000.0, 100.0, scale="log", reference="ours: Poisson–Gaussian "
                "(low-dose) noise, peak 10**3 → 10**2, read noise 2/255"),
       domain="ct", dataset="SARS-CoV-2 CT-scan dataset [52]"),
    _t("mri_denoising", "MRI Denoising", 21, 3, noise.rician_noise,
       Severity("sigma_255", 5.0, 25.0, reference="ours: Rician (magnitude MRI) noise, "
                "sigma 5 → 25 /255"), domain="mri", dataset="MRI slices"),
    _t("impulse_denoising", "Impulse Denoising", 22, 3, noise.salt_and_pepper, SALT_PEPPER,
       notes="salt & pepper noise, the ACMMM 'S&P Noise' task"),
    # Group 4: PromptGIP's classic degradations and friends.
    _t("inpainting", "Inpainting", 23, 4, weather.inpainting_strokes, INPAINTING),
    _t("sr_x2", "SRx2", 24, 4, compression.bicubic_down_up,
       fixed("scale", 2.0, "SRx2 of Table VI (bicubic, antialiased)"),
       notes="input = bicubic x1/2 then bicubic x2 back to the HR size; target = clean"),
    _t("ringing_removal", "Ringing Removal", 25, 4, blur.ringing, RINGING),
    _t("lucy_richardson_deconvolution", "Lucy-Richardson Deconvolution", 26, 4,
       blur.richardson_lucy, RICHARDSON_LUCY,
       notes="input = one RL iteration on the clean image (box-blur-like with edge artefacts)"),
    _t("simple_deraining", "Simple Deraining", 27, 4, weather.add_rain, RAIN,
       notes="PromptGIP's additive rain model (ACMMM §4.1 'simple additive rain model')"),
    _t("demosaicing", "Demosaicing", 28, 4, compression.demosaic_bilinear,
       fixed("none", 0.0, "ours: RGGB mosaic, OpenCV bilinear demosaicing (no knob)")),
    # Group 5: compression and sampling.
    _t("pixelation_removal", "Pixelation Removal", 29, 5, compression.pixelate,
       Severity("block", 2.0, 5.0, reference="ImageNet-C pixelate keeps 0.6–0.25 of the "
                "resolution; ours: blocks of 2 → 5 px")),
    _t("jpeg_restoration", "JPEG Restoration", 30, 5, compression.jpeg, JPEG),
    _t("jpeg2000_restoration", "JPEG 2000 Restoration", 31, 5, compression.jpeg2000,
       Severity("rate", 10.0, 40.0, scale="log", reference="ours: OpenJPEG compression ratio "
                "10 → 40 (about the PSNR span of JPEG q 40 → 10 at 256 px)")),
    # Group 6: colour quantisation.
    _t("quantization_otsu_restoration", "Quantization (OTSU) Restoration", 32, 6,
       compression.quantize_otsu,
       Severity("classes", 5.0, 3.0, integer=True, reference="ours: per-channel multi-Otsu, "
                "5 → 3 classes")),
    _t("quantization_hist_restoration", "Quantization (Hist) Restoration", 33, 6,
       compression.quantize_histogram,
       Severity("levels", 8.0, 4.0, integer=True, reference="ours: per-channel "
                "equal-population bins, 8 → 4 levels")),
    _t("quantization_median_restoration", "Quantization (Median) Restoration", 34, 6,
       compression.quantize_median_cut,
       Severity("colors", 32.0, 8.0, scale="log", integer=True, reference="ours: Pillow "
                "median-cut palette, 32 → 8 colours, no dithering")),
    # Groups 7–8.
    _t("oversharpen_restoration", "Oversharpen Restoration", 35, 7, blur.oversharpen,
       Severity("amount", 1.0, 3.0, reference="ours: unsharp mask sigma 1.5 px, amount 1 → 3")),
    _t("spatter_removal", "Spatter Removal", 36, 8, weather.spatter,
       Severity("coverage", 0.05, 0.20, reference="after ImageNet-C spatter; ours: 5 → 20 % "
                "of the image covered by water or mud")),
    # Groups 9–10: real or dataset-specific degradations.
    _p("dehazing", "Dehazing", 37, 9, "RESIDE ITS [40]"),
    _p("desnowing", "Desnowing", 38, 9, "Snow100K"),
    _p("complex_deraining", "Complex Deraining", 39, 9, "Rain13K [41]"),
    _p("raindrop_removal", "Raindrop Removal", 40, 9, "Raindrop (Qian et al. 2018)"),
    _p("cloud_removal", "Cloud Removal", 41, 9, "paired cloudy / clear remote-sensing images"),
    _p("dust_removal", "Dust Removal", 42, 9, "paired dusty / clean images"),
    _p("marine_snow_removal", "Marine Snow Removal", 43, 9, "MSRB marine snow benchmark"),
    _t("reflection_removal", "Reflection Removal", 44, 10, weather.reflection,
       Severity("alpha", 0.15, 0.40, reference="ours: (1-a)·T + a·blur(mirrored scene), "
                "a 0.15 → 0.40"),
       notes="synthetic reflection; real paired sets (SIR², Real20) can replace it"),
    _p("real_lowlight_sr", "Real Lowlight SR", 45, 10, "RELLISUR [55]"),
    _p("shadow_removal", "Shadow Removal", 46, 10, "ISTD"),
    _p("flare_removal", "Flare Removal", 47, 10, "Flare7K"),
    _p("highlight_removal", "Highlight Removal", 48, 10, "SHIQ"),
    _p("udc_poled_restoration", "UDC (Poled) Restoration", 49, 10, "UDC P-OLED (Zhou et al.)"),
    _p("demoireing", "Demoireing", 50, 10, "screen-moiré pairs (e.g. TIP2018)"),
    _p("udc_toled_restoration", "UDC (Toled) Restoration", 51, 10, "UDC T-OLED (Zhou et al.)"),
    # Group 11.
    _t("watermark_removal", "Watermark Removal", 52, 11, weather.watermark,
       Severity("opacity", 0.25, 0.60, reference="ours: tiled rotated text, opacity 0.25 → 0.6")),
)
