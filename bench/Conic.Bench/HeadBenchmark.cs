using Conic.Models;
using Conic.Losses;
using Conic.Methods;
using Conic.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Bench;

/// <summary>
/// The instance-classifier head alone (forward + backward) for growing N: chunked against the materialised logits,
/// against the ideal time of its arithmetic at this machine's matrix-multiply speed, and the per-step costs that
/// scale with N outside the head (normalising W, the optimiser's update of W).
/// </summary>
static class HeadBenchmark
{
    public static void Run(IReadOnlyList<long> sizes, IReadOnlyList<long> chunkSweep, int views, int dim, int repeats,
                           double materializedLimitGiB, TextWriter output)
    {
        double sgemm = Measure.SgemmFlopsPerSecond();
        output.WriteLine($"head: {views} views, D = {dim}, temperature 0.1; sgemm {sgemm / 1e9:F0} GFLOP/s (2048^3), {get_num_threads()} threads; median of {repeats}");
        output.WriteLine();
        output.WriteLine("| N | chunked fwd+bwd | peak extra memory | materialized fwd+bwd | peak extra memory | speed-up | ideal (3 products at sgemm speed) | chunked / ideal | normalise all of W | SGD momentum step on W |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (long classes in sizes)
        {
            manual_seed(0);
            var weights = new Parameter(randn(classes, dim).mul_(Kept(0.01)));
            var embeddings = randn(views, dim).requires_grad_();
            var images = randint(0, classes, new long[] { views / 2 });
            var targets = cat(new[] { images, images });

            Action Head(bool materialized) => () =>
            {
                var loss = materialized
                    ? ConicLosses.InstanceClassificationMaterialized(embeddings, weights, targets, 0.1)
                    : ConicLosses.InstanceClassification(embeddings, weights, targets, 0.1);
                loss.backward();
                weights.grad!.zero_();
                embeddings.grad!.zero_();
            };
            double chunked = Measure.MedianSeconds(Head(false), repeats, warmup: 3);
            double? chunkedMemory = Measure.PeakExtraMiB(Head(false));

            // The materialised head keeps about four [views, N] float matrices alive at its peak.
            double materializedGiB = 4.0 * views * classes * 4 / (1L << 30);
            string materializedTime = "skipped", materializedMemory = $"> {materializedGiB:F1} GiB (estimate)", speedUp = "";
            if (materializedGiB <= materializedLimitGiB)
            {
                double materialized = Measure.MedianSeconds(Head(true), repeats);
                materializedTime = Seconds(materialized);
                materializedMemory = MiB(Measure.PeakExtraMiB(Head(true)));
                speedUp = $"{materialized / chunked:F2}x";
            }

            double ideal = 3.0 * 2 * views * dim * classes / sgemm;
            double normalise = Measure.MedianSeconds(() => F.normalize(weights, dim: 1), repeats);
            weights.grad = randn_like(weights);
            var optimizer = new MomentumSgd(new[] { new ParameterGroup("classifier", new[] { weights }, 1.0, 0.0) }, 0.9);
            double sgd = Measure.MedianSeconds(() => optimizer.Step(0.1), repeats);
            optimizer.Dispose();

            output.WriteLine($"| {classes:N0} | {Seconds(chunked)} | {MiB(chunkedMemory)} | {materializedTime} | {materializedMemory} | {speedUp} | {Seconds(ideal)} | {chunked / ideal:F2} | {Seconds(normalise)} | {Seconds(sgd)} |");
            output.Flush();
            weights.Dispose();
            embeddings.Dispose();
        }
        FullSteps(sizes.Where(n => n >= 60_000).ToArray(), views, materializedLimitGiB, output);
        if (chunkSweep.Count > 0) SweepChunks(sizes.Contains(60_000) ? 60_000 : sizes[0], chunkSweep, views, dim, repeats, output);
    }

    /// <summary>A whole ConIC training step (backbone, projection, head, consistency, SGD) with N classifier rows.</summary>
    static void FullSteps(IReadOnlyList<long> sizes, int views, double materializedLimitGiB, TextWriter output)
    {
        var train = StepBenchmark.LoadOrSynthesize(null, views / 2, output);
        var options = new PretrainOptions
        {
            Instances = views / 2, BatchSize = views / 2, Precision = Precision.Float32,
            Backbone = new Models.BackboneOptions { InputChannels = train.Channels },
        };
        output.WriteLine();
        output.WriteLine($"full ConIC step, ResNet-18 width 16, batch {views / 2} ({views} views), {train.Channels}x{train.Height}x{train.Width}; median of 5:");
        output.WriteLine();
        output.WriteLine("| N | chunked head | materialized head | speed-up | chunked head, bfloat16 backbone | speed-up over materialized float32 |");
        output.WriteLine("|---|---|---|---|---|---|");
        foreach (long classes in sizes)
        {
            double chunked = StepBenchmark.StepSeconds(options with { MethodSettings = options.SettingsOf<ConicOptions>() with { ClassifierHead = ClassifierHead.Chunked } }, train, 5, (int)classes);
            double mixed = StepBenchmark.StepSeconds(options with { Precision = Precision.BFloat16, MethodSettings = options.SettingsOf<ConicOptions>() with { ClassifierHead = ClassifierHead.Chunked } }, train, 5, (int)classes);
            string materialized = "skipped (memory)", speedUp = "", mixedSpeedUp = "";
            if (4.0 * views * classes * 4 / (1L << 30) <= materializedLimitGiB)
            {
                double seconds = StepBenchmark.StepSeconds(options with { MethodSettings = options.SettingsOf<ConicOptions>() with { ClassifierHead = ClassifierHead.Materialized } }, train, 5, (int)classes);
                materialized = Seconds(seconds);
                speedUp = $"{seconds / chunked:F2}x";
                mixedSpeedUp = $"{seconds / mixed:F2}x";
            }
            output.WriteLine($"| {classes:N0} | {Seconds(chunked)} | {materialized} | {speedUp} | {Seconds(mixed)} | {mixedSpeedUp} |");
            output.Flush();
        }
    }

    /// <summary>The chunk size against speed at one N: where the automatic choice comes from.</summary>
    static void SweepChunks(long classes, IReadOnlyList<long> chunks, int views, int dim, int repeats, TextWriter output)
    {
        manual_seed(0);
        var weights = randn(classes, dim).mul_(Kept(0.01)).requires_grad_();
        var embeddings = randn(views, dim).requires_grad_();
        var targets = randint(0, classes, new long[] { views });
        output.WriteLine();
        output.WriteLine($"chunk size at N = {classes:N0} (automatic: {ConicLosses.AutomaticChunkSize(views)}):");
        output.WriteLine();
        output.WriteLine("| classes per chunk | fwd+bwd |");
        output.WriteLine("|---|---|");
        foreach (long chunk in chunks)
        {
            double seconds = Measure.MedianSeconds(() =>
            {
                ConicLosses.InstanceClassification(embeddings, weights, targets, 0.1, chunk).backward();
                weights.grad!.zero_();
                embeddings.grad!.zero_();
            }, repeats);
            output.WriteLine($"| {chunk} | {Seconds(seconds)} |");
            output.Flush();
        }
    }

    static string Seconds(double s) => s < 1 ? $"{s * 1000:F0} ms" : $"{s:F2} s";

    static string MiB(double? value) => value is double v ? $"{v:F0} MiB" : "n/a";
}
