"""KNNAccuracy and knn_accuracy on synthetic features of known structure."""
import pytest
import torch
import torch.nn.functional as F

from fastmim_mm.evaluation import KNNAccuracy, first_per_class, knn_accuracy


def study_knn_accuracy(train_x,
                       train_y,
                       test_x,
                       test_y,
                       classes,
                       k=20,
                       t=0.07):
    """The Fashion-MNIST study's weighted kNN, written out as a reference:
    cosine similarity, the k nearest vote with exp(sim / t), argmax."""
    train_x = F.normalize(train_x, dim=1)
    test_x = F.normalize(test_x, dim=1)
    correct = 0
    for start in range(0, len(test_x), 500):
        sim = test_x[start:start + 500] @ train_x.t()
        top, idx = sim.topk(min(k, len(train_x)), dim=1)
        votes = torch.zeros(len(top), classes)
        votes.scatter_add_(1, train_y[idx], (top / t).exp())
        correct += (votes.argmax(1) == test_y[start:start + 500]).sum()
    return 100. * float(correct) / len(test_x)


def clusters(num_classes, per_class, dim=32, spread=0.1, seed=0):
    """Points around one orthogonal direction per class."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:num_classes] * 5
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    feats = centres[labels] + spread * torch.randn(
        len(labels), dim, generator=g)
    return feats, labels


def test_separated_clusters_are_all_right():
    mem_x, mem_y = clusters(5, 40, seed=0)
    q_x, q_y = clusters(5, 20, seed=1)
    assert knn_accuracy(q_x, q_y, mem_x, mem_y, 5, topk=(1, 5)) == [100, 100]


def test_labels_independent_of_features_are_near_chance():
    # 3,000 queries: the binomial standard deviation of top-1 at chance
    # (10 %) is 0.55 points, of top-5 (50 %) 0.9; tolerances 2.5 and 4.
    g = torch.Generator().manual_seed(0)
    mem_x = torch.randn(3000, 64, generator=g)
    q_x = torch.randn(3000, 64, generator=g)
    mem_y = torch.randint(0, 10, (3000, ), generator=g)
    q_y = torch.randint(0, 10, (3000, ), generator=g)
    top1, top5 = knn_accuracy(q_x, q_y, mem_x, mem_y, 10, topk=(1, 5))
    assert top1 == pytest.approx(10, abs=2.5)
    assert top5 == pytest.approx(50, abs=4)


def test_same_numbers_as_the_study_and_for_any_chunking():
    # Overlapping clusters: about 60 % right, many decisions close.
    mem_x, mem_y = clusters(10, 100, spread=2.5, seed=0)
    q_x, q_y = clusters(10, 73, spread=2.5, seed=1)
    reference = study_knn_accuracy(mem_x, mem_y, q_x, q_y, 10)
    assert 40 < reference < 90
    results = {
        chunk:
        knn_accuracy(
            q_x, q_y, mem_x, mem_y, 10, topk=(1, 5), chunk_size=chunk)
        for chunk in (100000, 300, 64)  # 1 block; 3 x 4 blocks; 12 x 16
    }
    assert results[100000][0] == reference
    assert results[300] == results[100000] == results[64]
    assert results[64][1] > results[64][0]


def test_top_n_counts_only_classes_that_got_votes():
    # Query 0 is near three memory points: two of class 1 (closer) and one
    # of class 0, its class. k=3: top-1 wrong, top-2 right. Query 1's
    # class (2) has no memory point near it: never right, not even top-5.
    memory = torch.tensor([[1., 0.05], [1., -0.05], [1., 0.2], [0., 1.],
                           [0.05, 1.]])
    mem_y = torch.tensor([1, 1, 0, 3, 3])
    query = torch.tensor([[1., 0.], [0., 1.]])
    q_y = torch.tensor([0, 2])
    assert knn_accuracy(
        query, q_y, memory, mem_y, 5, k=3, topk=(1, 2, 5)) == [0, 50, 50]


def test_first_per_class():
    labels = torch.tensor([2, 0, 2, 1, 0, 2, 1, 0])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4, 6]
    with pytest.raises(ValueError, match='class 1 has 2'):
        first_per_class(labels, 3)


def _results(metric, feats, labels, memory, order):
    for i in order:
        metric.process(None, [
            dict(
                knn_feature=feats[i],
                gt_label=torch.tensor([labels[i]]),
                knn_memory=memory[i],
                knn_index=i if memory[i] else i - memory.count(True))
        ])


def test_metric_few_shot_uses_the_first_images_of_each_class():
    # Memory: per class, first an image at its own cluster, then 10
    # mislabelled ones at the next class's cluster. With all of them (or
    # the first 10 of each class), a query's cluster holds 10 (9) votes for
    # the wrong class and 1 for its own: top-1 wrong, top-2 right. The
    # first image alone (1-shot) is always right.
    centres, _ = clusters(3, 1, spread=0)
    mem_x, mem_y = [], []
    for c in range(3):
        mem_x += [centres[c]] + [centres[(c + 1) % 3]] * 10
        mem_y += [c] * 11
    q_x, q_y = clusters(3, 10, spread=0.1, seed=1)
    feats = torch.cat([torch.stack(mem_x), q_x])
    labels = mem_y + q_y.tolist()
    memory = [True] * len(mem_y) + [False] * len(q_y)
    metric = KNNAccuracy(few_shot=(1, 10), topk=(1, 2))
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    # Arrival order does not matter: the memory is ordered by knn_index.
    order = torch.randperm(
        len(labels), generator=torch.Generator().manual_seed(0))
    _results(metric, feats, labels, memory, order.tolist())
    metrics = metric.evaluate(len(labels))
    assert metrics == {
        'knn/top1': 0.,
        'knn/top2': 100.,
        'knn/1shot_top1': 100.,
        'knn/1shot_top2': 100.,
        'knn/10shot_top1': 0.,
        'knn/10shot_top2': 100.,
    }


def test_metric_refuses_bad_settings():
    with pytest.raises(ValueError, match='few_shot must hold positive'):
        KNNAccuracy(few_shot=(0, ))
    with pytest.raises(ValueError, match='temperature positive'):
        KNNAccuracy(temperature=0)
    metric = KNNAccuracy(few_shot=(5, ))
    with pytest.raises(
            ValueError,
            match=r'few_shot=\(5,\)\): 5-shot kNN '
            r'needs 5 memory images of every class; class 1 has '
            r'4\. Lower few_shot'):
        metric.check_memory_labels([0] * 5 + [1] * 4)
    with pytest.raises(ValueError, match="needs val_cfg=dict"):
        metric.process(None, [dict(gt_label=torch.tensor([0]))])
    with pytest.raises(ValueError, match='a.jpg has no label'):
        metric.process(None,
                       [dict(knn_feature=torch.ones(2), img_path='a.jpg')])
