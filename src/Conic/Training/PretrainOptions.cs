using Conic.Augmentation;
using Conic.Methods;
using Conic.Models;

namespace Conic.Training;

public enum OptimizerKind { Sgd, Lars }

/// <summary>
/// Everything a pretraining run depends on; the one place for defaults. Saved as config.json in the run folder and
/// inside every checkpoint, so that <c>--resume</c> and <c>conic eval</c> rebuild the same run.
/// </summary>
public sealed record PretrainOptions
{
    /// <summary>Dataset folder (see <see cref="Data.DatasetLoader"/>); null means Debian's Fashion-MNIST.</summary>
    public string? DataPath { get; init; }
    /// <summary>Side of the square images made from image folders.</summary>
    public int ImageSize { get; init; } = Data.DatasetLoader.DefaultImageSize;
    public string RunDirectory { get; init; } = "runs/conic";
    public string Method { get; init; } = "conic";
    /// <summary>How many training images are instances (classes); 0 means all. They are a seeded random subset.</summary>
    public int Instances { get; init; } = 2048;
    /// <summary>Instances per epoch, a window that slides over all instances once during the run; 0 = every instance every epoch.</summary>
    public int InstanceWindow { get; init; }
    public int Epochs { get; init; } = 150;
    public int BatchSize { get; init; } = 256;
    /// <summary>Learning rate for a batch of 256, scaled linearly with the batch size; null: the method's default.</summary>
    public double? LearningRate { get; init; }
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay of the network; null: the method's default.</summary>
    public double? WeightDecay { get; init; }
    public double WarmupEpochs { get; init; } = 5;
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>CPU threads for libtorch; 0 means one per core.</summary>
    public int Threads { get; init; }
    /// <summary>Prepare the next batch's views on a worker thread while the current step computes (same views either way).</summary>
    public bool Prefetch { get; init; } = true;
    /// <summary>Online kNN monitor every this many epochs (and after the last); 0 = off. Reads the model only.</summary>
    public int MonitorEvery { get; init; } = 10;
    public BackboneOptions Backbone { get; init; } = new();
    public AugmentationOptions Augmentation { get; init; } = new();
    public ConicOptions Conic { get; init; } = new();
    public InstDiscOptions InstDisc { get; init; } = new();
    public MocoOptions Moco { get; init; } = new();
    public SimclrOptions Simclr { get; init; } = new();
    public ByolOptions Byol { get; init; } = new();
    public SwavOptions Swav { get; init; } = new();
    /// <summary>SGD, or SGD with LARS layer-wise trust ratios (SimCLR's large-batch optimiser); null: the method's default.</summary>
    public OptimizerKind? Optimizer { get; init; }
    /// <summary>LARS trust coefficient η: a layer's rate is scaled by η·‖w‖ / (‖g‖ + wd·‖w‖).</summary>
    public double LarsEta { get; init; } = 0.02;
    /// <summary>Training precision of the backbone's convolutions (weights, gradients, optimiser and BatchNorm stay float32).</summary>
    public Precision Precision { get; init; } = Precision.Auto;
    /// <summary>CPU convolution kernels; Auto: oneDNN where the arithmetic check finds it right, else libtorch's own.</summary>
    public ConvolutionKernels Kernels { get; init; } = ConvolutionKernels.Auto;

    public double BaseLearningRate => LearningRate ?? MethodRegistry.DefaultsFor(Method).LearningRate;

    public OptimizerKind OptimizerOrDefault => Optimizer ?? MethodRegistry.DefaultsFor(Method).Optimizer;

    public double WeightDecayOrDefault => WeightDecay ?? MethodRegistry.DefaultsFor(Method).WeightDecay;

    /// <summary>These options with the method's defaults written in, as the trainer uses and records them.</summary>
    public PretrainOptions WithMethodDefaults() =>
        this with { LearningRate = BaseLearningRate, Optimizer = OptimizerOrDefault, WeightDecay = WeightDecayOrDefault };

    public double ScaledLearningRate => BaseLearningRate * BatchSize / 256.0;

    public void Validate()
    {
        if (Epochs < 1) throw new ConicException($"--epochs: {Epochs} must be at least 1");
        if (BatchSize < 2) throw new ConicException($"--batch-size: {BatchSize} must be at least 2");
        if (Instances < 0) throw new ConicException($"--instances: {Instances} must be >= 0 (0 = all)");
        if (InstanceWindow < 0) throw new ConicException($"--instance-window: {InstanceWindow} must be >= 0 (0 = no window)");
        if (LearningRate is <= 0) throw new ConicException($"--lr: {LearningRate} must be > 0");
        if (LearningRate is double rate) Check.AtMost("--lr", rate, 100, "SSL learning rates for batch 256 are 0.03 to 5");
        if (Momentum is < 0 or >= 1) throw new ConicException($"--momentum: {Momentum} must be in [0, 1)");
        if (WeightDecay < 0) throw new ConicException($"--wd: {WeightDecay} must be >= 0");
        if (WarmupEpochs < 0) throw new ConicException($"--warmup-epochs: {WarmupEpochs} must be >= 0");
        if (Threads < 0) throw new ConicException($"--threads: {Threads} must be >= 0");
        Check.NonNegative("--monitor-every", MonitorEvery);
        if (Device is not ("cpu" or "cuda") && !Device.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ConicException($"--device: '{Device}' is not cpu, cuda or cuda:N");
        if (LarsEta <= 0) throw new ConicException($"--lars-eta: {LarsEta} must be > 0");
        Augmentation.Validate();
        Conic.Validate();
        InstDisc.Validate();
        Moco.Validate();
        Simclr.Validate();
        Byol.Validate();
        Swav.Validate();
    }
}
