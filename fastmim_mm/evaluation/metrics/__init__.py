from .knn import KNNAccuracy, first_per_class, knn_accuracy

__all__ = ['KNNAccuracy', 'first_per_class', 'knn_accuracy']
