from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


setup(
    name='fastmim_mm',
    version='0.1.0',
    description='FastMIM masked image modeling pre-training for OpenMMLab',
    packages=find_packages(include=['fastmim_mm', 'fastmim_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require=dict(
        transfer=read_requirements('requirements/transfer.txt'),
        tests=read_requirements('requirements/tests.txt')),
    license='Apache-2.0',
)
