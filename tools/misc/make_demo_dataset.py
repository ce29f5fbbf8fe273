"""Write the demo's synthetic ImageNet-layout dataset (deterministic)."""
import argparse
import os.path as osp

from synthetic_imagenet import make_imagenet_folder


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/fastmim_demo')
    parser.add_argument('--num-classes', type=int, default=8)
    parser.add_argument('--images-per-class', type=int, default=64)
    parser.add_argument('--size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if osp.isfile(osp.join(args.root, 'meta', 'train.txt')):
        print(f'demo dataset already at {args.root}')
        return
    make_imagenet_folder(
        args.root,
        num_classes=args.num_classes,
        images_per_class=args.images_per_class,
        image_size=(args.size, args.size),
        seed=args.seed)
    print(f'wrote {args.num_classes * args.images_per_class} images to '
          f'{args.root}')


if __name__ == '__main__':
    main()
