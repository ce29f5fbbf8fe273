"""The Fashion-MNIST study of FastMIM: ``run.py`` runs it; README.md says
what it measures."""
