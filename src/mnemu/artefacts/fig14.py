"""Fig. 14: test images blended with a class's code at each ratio (one row per image)."""

import torch

from ._plots import pyplot, save


def draw(inputs, outputs, benchmarks) -> None:
    shown = torch.load(inputs["files"][0], map_location="cpu", weights_only=True)
    images, ratios = shown["images"], shown["ratios"]  # [R, N, C, H, W] in [0, 1]
    rows, cols = images.shape[1], images.shape[0]
    fig, axes = pyplot().subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows), squeeze=False)
    for j, ratio in enumerate(ratios):
        for i in range(rows):
            image = images[j, i].permute(1, 2, 0).numpy()
            ax = axes[i][j]
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image,
                      cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{100 * ratio:g}%", fontsize=8)
    fig.suptitle(f"Test images with the class-{shown['code_class']} code blended in "
                 f"({shown['benchmark']}, seed {shown['seed']})", fontsize=8)
    save(fig, outputs)
