"""Install shim: `pip install -e .` makes `siamkpn` and `toolkit` importable."""
from setuptools import find_packages, setup

setup(
    name="siamkpn",
    version="0.1.0",
    description="SiamKPN: Siamese Keypoint Prediction Network for visual object tracking (pysot-style)",
    packages=find_packages(include=["siamkpn", "siamkpn.*", "toolkit", "toolkit.*", "hpsearch", "hpsearch.*"]),
    python_requires=">=3.9",
    install_requires=[line.strip() for line in open("requirements.txt") if line.strip() and not line.startswith("#")],
)
