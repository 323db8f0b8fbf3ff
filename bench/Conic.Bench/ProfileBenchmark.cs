using System.Diagnostics;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Bench;

/// <summary>
/// Where one ConIC training step's time goes (augmentation, forward, backward, optimiser, the method's after-step
/// work), per backbone width, and what share of this CPU's multiply-add peak the step reaches.
/// </summary>
static class ProfileBenchmark
{
    public static void Run(string? dataPath, int[] widths, int instances, int batch, int steps, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 0);
        var train = StepBenchmark.LoadOrSynthesize(dataPath, instances, output);
        double sgemm = Measure.SgemmFlopsPerSecond();
        double? fmaPeak = Measure.FmaPeakFlopsPerSecond();
        output.WriteLine($"profile: ResNet-18, small stem, {train.Channels}x{train.Height}x{train.Width}, batch {batch} (two views), N = {instances}, float32, " +
                         $"{get_num_threads()} threads, {MemoryAllocator.Current()} malloc, {TorchRuntime.CpuDescription()}; median of {steps} steps");
        output.WriteLine($"peak: float32 matrix product 2048² {sgemm / 1e9:F0} GFLOP/s" +
                         (fmaPeak is double f ? $"; FMA peak {f / 1e9:F0} GFLOP/s (independent fused multiply-adds on every core, widest vectors)" : ""));
        output.WriteLine();
        output.WriteLine("| width | images/s | augment | forward | backward | optimiser | after step | other | backbone share of fwd+bwd | GFLOP/s | of matrix-product speed | of FMA peak |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (int width in widths)
        {
            var options = new PretrainOptions
            {
                Instances = instances, BatchSize = batch, Precision = Precision.Float32,
                Backbone = new BackboneOptions { InputChannels = train.Channels, Width = width },
            };
            using var model = PretrainedModel.Build(options, train, instances, CPU);
            var parts = Parts(model, options, train, steps);
            double step = parts.Total;
            double flops = StepFlops(model, options, train);
            double backbone = BackboneSeconds(options, train, steps);
            string Share(double seconds) => $"{seconds / step * 100:F0} %";
            output.WriteLine($"| {width} | {batch / step:F0} | {Share(parts.Augment)} | {Share(parts.Forward)} | {Share(parts.Backward)} | " +
                             $"{Share(parts.Optimizer)} | {Share(parts.After)} | {Share(step - parts.Augment - parts.Forward - parts.Backward - parts.Optimizer - parts.After)} | " +
                             $"{backbone / (parts.Forward + parts.Backward) * 100:F0} % | {flops / step / 1e9:F0} | {flops / step / sgemm * 100:F0} % | " +
                             $"{(fmaPeak is double peak ? $"{flops / step / peak * 100:F0} %" : "n/a")} |");
        }
        output.WriteLine();
        output.WriteLine("Parts are medians of each part over the steps; 'other' is the whole step's median minus the parts' (timer and scope overhead).");
        output.WriteLine("GFLOP/s counts 2 per multiply-add: convolutions and linear layers forward, twice that backward; the backbone share times the");
        output.WriteLine("backbone's forward and backward alone on random views of the same size.");
    }

    sealed record StepParts(double Total, double Augment, double Forward, double Backward, double Optimizer, double After);

    /// <summary>Medians of each part of <paramref name="steps"/> training steps as the trainer runs them (after three warm-up steps).</summary>
    static StepParts Parts(PretrainedModel model, PretrainOptions options, Conic.Data.ImageDataset train, int steps)
    {
        model.CheckArithmetic(2 * options.BatchSize, options.Precision, ConvolutionKernels.Auto);
        using var optimizer = new MomentumSgd(model.Method.ParameterGroups(options.WeightDecayOrDefault), options.Momentum);
        using var generator = new Generator(0);
        var random = new Random(0);
        model.Method.train();
        var times = new List<double[]>();
        for (int s = 0; s < steps + 3; s++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var ends = new double[5];  // seconds since the step began at which augmentation and each StepPart ended
            var chosen = Enumerable.Range(0, options.BatchSize).Select(_ => random.Next(train.Count)).ToArray();
            var views = model.Augmenter.Views(train, chosen, CPU, generator);
            ends[0] = clock.Elapsed.TotalSeconds;
            var batch = new TrainingBatch(views, tensor(chosen.Select(i => (long)(i % options.Instances)).ToArray()), 0.5, generator);
            Trainer.Step(model.Method, optimizer, batch, options.ScaledLearningRate,
                         finished: part => ends[1 + (int)part] = clock.Elapsed.TotalSeconds);
            double total = clock.Elapsed.TotalSeconds;
            if (s >= 3) times.Add([total, ends[0], ends[1] - ends[0], ends[2] - ends[1], ends[3] - ends[2], ends[4] - ends[3]]);
        }
        double Median(int part) => times.Select(t => t[part]).Order().ElementAt(times.Count / 2);
        return new StepParts(Median(0), Median(1), Median(2), Median(3), Median(4), Median(5));
    }

    /// <summary>Median seconds of the backbone's forward and backward alone on the step's 2 × batch views.</summary>
    static double BackboneSeconds(PretrainOptions options, Conic.Data.ImageDataset train, int steps)
    {
        using var backbone = new ResNet(options.Backbone);
        backbone.train();
        var views = randn(2 * options.BatchSize, train.Channels, train.Height, train.Width);
        return Measure.MedianSeconds(() =>
        {
            backbone.zero_grad();
            backbone.call(views).pow(Kept(2)).sum().backward();
        }, steps, warmup: 3);
    }

    /// <summary>Floating-point operations of one step: 2 per multiply-add, backward twice the forward, both views.</summary>
    static double StepFlops(PretrainedModel model, PretrainOptions options, Conic.Data.ImageDataset train)
    {
        // Every matrix parameter outside the backbone is a linear layer applied once per view (projector, classifier).
        var backboneParameters = model.Backbone.parameters().ToHashSet();
        long linear = model.Method.parameters().Where(p => p.dim() == 2 && !backboneParameters.Contains(p)).Sum(p => p.numel());
        long perView = model.Backbone.MultiplyAddsPerImage(train.Height, train.Width) + linear;
        return 3.0 * 2.0 * perView * 2 * options.BatchSize;
    }
}
