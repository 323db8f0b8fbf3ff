using Conic.Training;
using Conic.Runtime;

namespace Conic.Evaluation;

/// <summary>
/// Plain warnings about a run whose numbers say it did not learn: a loss that did not fall, or an encoder no better
/// than raw pixels. Shown in both reports and printed at the end of <c>pretrain</c> and <c>eval</c>.
/// </summary>
public static class RunDiagnosis
{
    /// <summary>Epochs of metrics before a flat loss is called a failure (warm-up alone can keep it flat for a few).</summary>
    const int MinimumEpochs = 5;
    /// <summary>A loss that fell by less than this fraction over the run did not fall.</summary>
    const double FlatFraction = 0.02;

    /// <summary>The warnings for the run in <paramref name="runDirectory"/> (its metrics.csv) and its evaluation, each one line; empty when it learned.</summary>
    public static IReadOnlyList<string> Warnings(string runDirectory, EvaluationResult? result)
    {
        var warnings = new List<string>();
        var loss = new MetricsCsv(new RunFolder(runDirectory).Metrics).Column("loss");
        if (loss.Count >= MinimumEpochs && loss[^1].Value > loss[0].Value * (1 - FlatFraction))
            warnings.Add($"the loss did not fall ({loss[0].Value:G4} after epoch {loss[0].Epoch}, {loss[^1].Value:G4} after epoch {loss[^1].Epoch}): " +
                         "the run learned nothing; check --lr and the method's settings");
        if (result != null && result.KnnTop1 <= result.RawPixelKnnTop1)
            warnings.Add($"kNN accuracy {result.KnnTop1:P2} is not above kNN on raw pixels ({result.RawPixelKnnTop1:P2}): " +
                         "this encoder is no better than the images themselves; train longer or tune");
        if (result?.RawPixelLinearTop1 is double pixelLinear && result.LinearTop1 <= pixelLinear)
            warnings.Add($"linear probe accuracy {result.LinearTop1:P2} is not above the linear probe on raw pixels ({pixelLinear:P2})");
        return warnings;
    }
}
