"""Write small synthetic COCO (instances) and ADE20K datasets in their real
on-disk formats (deterministic), by default where the benchmark configs
expect them:

    data/coco/                       (mmdetection configs' data_root)
    data/ade/ADEChallengeData2016/   (mmsegmentation configs' data_root)

For smoke runs of the transfer configs without the real datasets. Both use
the real datasets' classes: the COCO annotation files list COCO's 80
categories (objects are drawn from the first --num-classes of them) and the
ADE20K label maps hold ADE20K class values, so the configs read them without
changing classes or heads. docs/en/user_guides/small_chain.md runs the
whole chain on them.
"""
import argparse
import os.path as osp

from synthetic_downstream import (coco_class_names, make_ade20k,
                                  make_coco_instances)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--coco-root', default='data/coco')
    parser.add_argument('--ade-root', default='data/ade/ADEChallengeData2016')
    parser.add_argument(
        '--only', choices=['coco', 'ade20k'], help='write one dataset only')
    parser.add_argument(
        '--num-images', type=int, default=8, help='images per split')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=2,
        help='COCO objects belong to the first N of COCO\'s 80 classes '
        '(1 to 80; the files list all 80 either way)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.num_classes <= 80:
        parser.error(f'--num-classes {args.num_classes}: COCO has 80 '
                     f'classes; give 1 to 80.')
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
            classes = ', '.join(coco_class_names(args.num_classes))
            print(f'coco: {args.num_images} train + {args.num_images} val '
                  f'images in {root}, objects of COCO\'s classes {classes}')
        else:
            make_ade20k(root, num_images=args.num_images, seed=args.seed)
            print(f'ade20k: {args.num_images} training + {args.num_images} '
                  f'validation images in {root}, ADE20K\'s 150 classes '
                  f'(values 1-6 drawn)')


if __name__ == '__main__':
    main()
