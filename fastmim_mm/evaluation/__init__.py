"""Evaluation during pre-training: weighted kNN (and few-shot kNN) on the
frozen backbone's features, as MMEngine's validation
(:class:`KNNValLoop`, :class:`KNNEvalDataset`, :class:`KNNAccuracy`)."""
from .knn_dataset import KNNEvalDataset
from .knn_loop import KNNValLoop, backbone_features
from .metrics import KNNAccuracy, first_per_class, knn_accuracy

__all__ = [
    'KNNAccuracy', 'KNNEvalDataset', 'KNNValLoop', 'backbone_features',
    'first_per_class', 'knn_accuracy'
]
