using Conic.Models;

namespace Conic.Transfer;

/// <summary>The dense tasks <c>conic finetune</c> trains.</summary>
public enum DenseTask { Segmentation, Detection }

/// <summary>
/// How <c>conic finetune</c> trains a pretrained backbone with a task head on labelled data. Stored as the fine-tune
/// run's config.json and in its checkpoint, so that a resumed run continues the same plan.
/// </summary>
public sealed record FinetuneOptions
{
    public DenseTask Task { get; init; } = DenseTask.Segmentation;
    /// <summary>The pretrained run whose backbone starts the network; null for random initialisation (the reference row).</summary>
    public string? InitRun { get; init; }
    /// <summary>The backbone when <see cref="InitRun"/> is null (input channels follow the data).</summary>
    public BackboneOptions Backbone { get; init; } = new();
    public string DataPath { get; init; } = "";
    public int Epochs { get; init; } = 20;
    public int BatchSize { get; init; } = 32;
    /// <summary>SGD learning rate at <see cref="BatchSize"/> (not rescaled), cosine-decayed to 0 after a one-epoch warm-up.</summary>
    public double LearningRate { get; init; } = 0.05;
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Train the head only, the backbone (BatchNorm statistics included) kept as pretrained.</summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Side images and masks are resized to; null keeps the images' own size (all square, one size).</summary>
    public int? ImageSize { get; init; }
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }

    /// <summary>The one-line problem with these options, or null.</summary>
    public string? Problem() =>
        Epochs < 1 ? "--epochs must be at least 1"
        : BatchSize < 2 ? "--batch-size must be at least 2 (BatchNorm needs two images)"
        : !(LearningRate > 0) ? "--lr must be positive"
        : Momentum is < 0 or >= 1 ? "--momentum must be in [0, 1)"
        : WeightDecay < 0 ? "--wd must not be negative"
        : ImageSize is < 8 ? "--image-size must be at least 8"
        : null;
}

static class DenseTasks
{
    /// <summary>The task's labelled data at <paramref name="path"/> (see <see cref="Data.SegmentationDataset.Load"/> and <see cref="DetectionTask.Load"/>).</summary>
    public static FinetuneTask Load(this DenseTask task, string path, int? channels, int? side) => task switch
    {
        DenseTask.Segmentation => new SegmentationTask(Data.SegmentationDataset.Load(path, channels, side)),
        _ => DetectionTask.Load(path, channels, side),
    };

    /// <summary>The task's network on <paramref name="backbone"/>: class maps at the input's size, or CenterNet's maps (K heat maps, 2 sizes, 2 offsets).</summary>
    public static Models.DenseNetwork CreateNetwork(this DenseTask task, Models.ResNet backbone, int classes) => task == DenseTask.Segmentation
        ? new(backbone, classes, upsampleToInput: true)
        : new(backbone, classes + 4, upsampleToInput: false);
}
