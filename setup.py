"""mlpipe: production ML pipelines in the style of TFX, over the TFX libraries."""

from setuptools import find_packages, setup

# The core stack is pinned exactly in requirements.lock; these ranges only say what mlpipe needs.
CORE = [
    "ml-metadata==1.16.0",
    "tensorflow==2.16.2",
    "tf-keras==2.16.0",
    "tensorflow-data-validation==1.16.1",
    "tensorflow-transform==1.16.0",
    "tensorflow-model-analysis==0.47.1",
    "tfx-bsl==1.16.1",
    "apache-beam==2.72.0",
    "tensorflow-serving-api==2.16.1",
    "dill",
    "pyarrow",
    "pandas",
    "rich",
    "sqlalchemy",  # SqlExampleGen
    "isal",  # gzip level 1 at ~4x zlib's speed for ExampleGen's TFRecords
    "werkzeug",  # mlpipe ui
    "jinja2",  # mlpipe ui
    "s3fs",  # s3:// artifacts (gs:// uses google-cloud-storage, which Beam's GCP extras pin)
]

setup(
    name="mlpipe",
    version="0.1.0",
    description="Production ML pipelines (TFX-style components, ML Metadata, many runners)",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["mlpipe", "mlpipe.*"]),
    package_data={"mlpipe.ui": ["templates/*.html", "static/*"]},
    install_requires=CORE,
    extras_require={
        "dev": ["pytest", "pytest-xdist", "pytest-timeout", "ruff", "keras-tuner", "nbclient", "selenium"],
        "kubeflow": ["kfp>=2.7,<3", "kfp-kubernetes>=1.5,<2"],
        # Airflow 3 conflicts with ml-metadata's pins (attrs, protobuf): install it in its own
        # virtualenv; its tasks call this environment's interpreter (see README).
        "airflow": ["apache-airflow>=3,<4"],
    },
    entry_points={"console_scripts": ["mlpipe=mlpipe.cli:main"]},
)
