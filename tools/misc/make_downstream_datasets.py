"""Write small synthetic COCO (instances) and ADE20K datasets in their real
on-disk formats (deterministic), where the benchmark configs expect them:

    data/coco/                       (mmdetection configs' data_root)
    data/ade/ADEChallengeData2016/   (mmsegmentation configs' data_root)

For smoke runs of the transfer configs without the real datasets; with
--num-classes other than 80, also set the detection model's num_classes and
the dataset's metainfo classes (printed below).
"""
import argparse
import os.path as osp

from synthetic_downstream import (coco_class_names, make_ade20k,
                                  make_coco_instances)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--coco-root', default='data/coco')
    parser.add_argument('--ade-root', default='data/ade/ADEChallengeData2016')
    parser.add_argument(
        '--only', choices=['coco', 'ade20k'], help='write one dataset only')
    parser.add_argument(
        '--num-images', type=int, default=8, help='images per split')
    parser.add_argument(
        '--num-classes', type=int, default=2, help='COCO object classes')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    for name, root in (('coco', args.coco_root), ('ade20k', args.ade_root)):
        if args.only not in (None, name):
            continue
        marker = ('annotations/instances_val2017.json'
                  if name == 'coco' else 'annotations/validation')
        if osp.exists(osp.join(root, marker)):
            print(f'{name}: a dataset is already at {root}; left as it is')
            continue
        if name == 'coco':
            make_coco_instances(
                root,
                num_images=args.num_images,
                num_classes=args.num_classes,
                seed=args.seed)
            print(f'coco: {args.num_images} train + {args.num_images} val '
                  f'images in {root}; classes '
                  f'{coco_class_names(args.num_classes)}')
        else:
            make_ade20k(root, num_images=args.num_images, seed=args.seed)
            print(f'ade20k: {args.num_images} training + {args.num_images} '
                  f'validation images in {root}')


if __name__ == '__main__':
    main()
