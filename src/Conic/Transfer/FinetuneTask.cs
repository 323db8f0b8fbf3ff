using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Transfer;

/// <summary>What a finished fine-tune reports beside its task's scores.</summary>
public sealed record FinetuneSummary(string Initialisation, bool FrozenBackbone, double TrainImagesPerSecond);

/// <summary>
/// The part of fine-tuning that depends on the task: its labelled data (held in memory at one square side), the
/// network's outputs, the loss of a batch, the validation scores and the final report. <see cref="Finetuner"/> owns
/// the loop, the optimiser, checkpoints and resume.
/// </summary>
public abstract class FinetuneTask : IDisposable
{
    /// <summary>The task's name (segmentation, detection, classification).</summary>
    public abstract string Name { get; }
    /// <summary>The class names, in index order.</summary>
    public abstract IReadOnlyList<string> ClassNames { get; }
    /// <summary>How many training images.</summary>
    public abstract int TrainCount { get; }
    /// <summary>Colour channels of the images.</summary>
    public abstract int Channels { get; }
    /// <summary>Side of the (square) images the network is trained on.</summary>
    public abstract int Side { get; }

    /// <summary>Per-channel mean and standard deviation of the training images (a random backbone's input normalisation).</summary>
    public abstract InputNormalization Statistics();

    /// <summary>The task's network on <paramref name="backbone"/> (created under the run's seed).</summary>
    public abstract TaskNetwork CreateNetwork(Backbone backbone);

    /// <summary>The training loss of the images <paramref name="batch"/>, each flipped left-right where <paramref name="flipped"/> says.</summary>
    public abstract Tensor Loss(TaskNetwork network, int[] batch, bool[] flipped, InputNormalization normalization, Device device);

    /// <summary>Validation scores by name (fractions), the headline first; the network is left in eval mode.</summary>
    public abstract IReadOnlyList<(string Name, double Value)> Validate(TaskNetwork network, InputNormalization normalization, Device device, int batchSize);

    /// <summary>Writes eval.json and pictures of predictions into <paramref name="folder"/>; returns the lines that tell the user the result.</summary>
    public abstract IReadOnlyList<string> Finish(TaskNetwork network, InputNormalization normalization, Device device, int batchSize,
                                                 RunFolder folder, FinetuneSummary summary);

    /// <summary>Frees the data held in memory.</summary>
    public virtual void Dispose()
    {
    }

    /// <summary>
    /// Rows <paramref name="batch"/> of uint8 <paramref name="stored"/> ([N, ...]) on <paramref name="device"/>, each
    /// flipped along its last axis where <paramref name="flipped"/> says.
    /// </summary>
    protected static Tensor Rows(Tensor stored, int[] batch, bool[] flipped, Device device) =>
        Flipped(stored.index_select(0, tensor(batch.Select(i => (long)i).ToArray())).to(device), flipped);

    /// <summary>Each row of <paramref name="rows"/> flipped along its last axis where <paramref name="flipped"/> says.</summary>
    protected static Tensor Flipped(Tensor rows, bool[] flipped)
    {
        if (!flipped.Any(f => f)) return rows;
        var flip = tensor(flipped, device: rows.device).view([-1, .. Enumerable.Repeat(1L, (int)rows.dim() - 1)]);
        return where(flip, rows.flip(-1), rows);
    }

    /// <summary>Per-channel mean and standard deviation of uint8 images [N, C, H, W].</summary>
    protected static InputNormalization Statistics(Tensor images)
    {
        using var scope = NewDisposeScope();
        var pixels = images.to_type(ScalarType.Float32).div_(Kept(255f));
        return new InputNormalization(pixels.mean([0, 2, 3]).data<float>().ToArray(), pixels.std([0, 2, 3]).clamp_min(Kept(1e-3)).data<float>().ToArray());
    }

    /// <summary><paramref name="value"/> (a fraction) as a percentage with two decimals.</summary>
    protected static string Percent(double value) => $"{100 * value:F2} %";

    /// <summary>The first line a finished fine-tune prints: the task's scores, then its speeds and where its picture is.</summary>
    protected static string Summary(string scores, int images, string split, double trainPerSecond, double inferencePerSecond, string? pictures) =>
        $"{scores} on {images} {split} images; {trainPerSecond:F0} img/s training, {inferencePerSecond:F0} img/s inference" + (pictures == null ? "" : $"; {pictures}");

    /// <summary>Where a task draws its predictions.</summary>
    protected static string PicturesPath(RunFolder folder) => Path.Combine(folder.Directory, "predictions.png");

    /// <summary>Seconds taken by <paramref name="action"/>.</summary>
    protected static double Timed(Action action)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }
}
