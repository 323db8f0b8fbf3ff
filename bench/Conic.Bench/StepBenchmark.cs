using System.Diagnostics;
using System.Globalization;
using Conic.Models;
using Conic.Data;
using Conic.Methods;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Bench;

/// <summary>
/// One ConIC training step in Conic and in PyTorch (bench/reference_step.py, same network, loss and optimiser), the
/// input pipeline alone, and end-to-end pretraining with its peak memory, side by side from one run.
/// </summary>
static class StepBenchmark
{
    public static void Run(string? dataPath, int instances, int batch, int steps, int epochs, string? python, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 0);
        var train = LoadOrSynthesize(dataPath, instances, output);
        // Float32 throughout: the same arithmetic as the PyTorch reference (bfloat16 is measured by `head` and in the README).
        var options = new PretrainOptions
        {
            Instances = instances, BatchSize = batch, Precision = Precision.Float32,
            Backbone = new Models.BackboneOptions { InputChannels = train.Channels },
        };
        output.WriteLine($"step: ResNet-18 width {options.Backbone.Width}, small stem, {train.Channels}x{train.Height}x{train.Width}, batch {batch} (two views), N = {instances}, {get_num_threads()} threads, {MemoryAllocator.Current()} malloc; median of {steps} steps");

        // This machine's speed drifts by ±10 % over minutes: Conic and PyTorch are measured in alternating rounds
        // and each reported as its median round.
        const int rounds = 3;
        var automaticRounds = new List<double>();
        var referenceRounds = new List<(string Version, double? ImagesPerSecond)>();
        for (int round = 0; round < rounds; round++)
        {
            automaticRounds.Add(StepSeconds(options, train, steps));
            referenceRounds.Add(PythonReference(python, train, instances, batch, steps, round == 0 ? output : TextWriter.Null));
        }
        double automatic = automaticRounds.Order().ElementAt(rounds / 2);
        var reference = referenceRounds.OrderBy(r => r.ImagesPerSecond ?? 0).ElementAt(rounds / 2);
        output.WriteLine($"rounds (images/s): Conic {string.Join(", ", automaticRounds.Select(s => $"{batch / s:F0}"))}; " +
                         $"PyTorch {string.Join(", ", referenceRounds.Select(r => r.ImagesPerSecond?.ToString("F0", CultureInfo.InvariantCulture) ?? "-"))}");
        double chunked = StepSeconds(options with { MethodSettings = options.SettingsOf<ConicOptions>() with { ClassifierHead = ClassifierHead.Chunked } }, train, steps);
        double materialized = StepSeconds(options with { MethodSettings = options.SettingsOf<ConicOptions>() with { ClassifierHead = ClassifierHead.Materialized } }, train, steps);
        double pipeline = PipelineSeconds(options, train, steps);
        var (endToEnd, peakMiB) = EndToEnd(options with { Epochs = epochs }, train);

        output.WriteLine();
        output.WriteLine("| measurement | images/s | ratio |");
        output.WriteLine("|---|---|---|");
        output.WriteLine($"| Conic ConIC step (default: automatic head) | {batch / automatic:F0} | {Ratio(reference, batch / automatic)} |");
        output.WriteLine($"| Conic ConIC step, chunked head | {batch / chunked:F0} | {Ratio(reference, batch / chunked)} |");
        output.WriteLine($"| Conic ConIC step, materialized head (the PyTorch code's computation) | {batch / materialized:F0} | {Ratio(reference, batch / materialized)} |");
        output.WriteLine($"| PyTorch {reference.Version} step (bench/reference_step.py) | {(reference.ImagesPerSecond is double r ? r.ToString("F0", CultureInfo.InvariantCulture) : reference.Version)} | 1.00 |");
        output.WriteLine($"| input pipeline alone (gather + two augmented views) | {batch / pipeline:F0} | {pipeline / automatic * 100:F1} % of a step's time |");
        output.WriteLine($"| end-to-end pretraining ({epochs} epochs, median epoch) | {endToEnd:F0} | {endToEnd / (batch / automatic):F2} of the step alone; peak RSS {peakMiB:F0} MiB |");
    }

    static string Ratio((string Version, double? ImagesPerSecond) reference, double imagesPerSecond) =>
        reference.ImagesPerSecond is double r ? $"{imagesPerSecond / r:F2} of PyTorch" : "";

    public static ImageDataset LoadOrSynthesize(string? dataPath, int instances, TextWriter output)
    {
        if (dataPath != null || Directory.Exists(DatasetLoader.DefaultFashionMnist))
            return DatasetLoader.Load(dataPath).Train;
        output.WriteLine($"{DatasetLoader.DefaultFashionMnist} is absent: random 1x28x28 images stand in (speed does not depend on content)");
        var pixels = new byte[instances * 28 * 28];
        new Random(0).NextBytes(pixels);
        return new ImageDataset(pixels, instances, 1, 28, 28, null, "synthetic");
    }

    /// <summary>Median seconds of one full training step (views made once) with <paramref name="instanceCount"/> classifier rows (default: the instances).</summary>
    public static double StepSeconds(PretrainOptions options, ImageDataset train, int steps, int? instanceCount = null)
    {
        using var model = PretrainedModel.Build(options, train, instanceCount ?? (options.Instances > 0 ? options.Instances : train.Count), CPU);
        model.CheckArithmetic(2 * options.BatchSize, options.Precision, options.Kernels);
        var optimizer = new MomentumSgd(model.Method.ParameterGroups(options.WeightDecayOrDefault), options.Momentum);
        using var generator = new Generator(0);
        var indices = arange(Kept(0), Kept(options.BatchSize), Kept(1), dtype: ScalarType.Int64);
        var views = model.Augmenter.Views(train, Enumerable.Range(0, options.BatchSize).ToArray(), CPU, generator);
        model.Method.train();
        double seconds = Measure.MedianSeconds(
            () => Trainer.Step(model.Method, optimizer, new TrainingBatch(views, indices, 0.5, generator), options.ScaledLearningRate),
            steps, warmup: 3);
        optimizer.Dispose();
        return seconds;
    }

    static double PipelineSeconds(PretrainOptions options, ImageDataset train, int steps)
    {
        using var model = PretrainedModel.Build(options, train, options.Instances > 0 ? options.Instances : train.Count, CPU);
        using var generator = new Generator(0);
        var random = new Random(0);
        return Measure.MedianSeconds(() =>
        {
            var batch = Enumerable.Range(0, options.BatchSize).Select(_ => random.Next(train.Count)).ToArray();
            foreach (var view in model.Augmenter.Views(train, batch, CPU, generator)) view.Dispose();
        }, steps, warmup: 2);
    }

    static (double ImagesPerSecond, double PeakMiB) EndToEnd(PretrainOptions options, ImageDataset train)
    {
        string run = Path.Combine(Path.GetTempPath(), $"conic-bench-{Environment.ProcessId}");
        try
        {
            GC.Collect();
            ProcessMemory.ResetPeak();
            using (Trainer.Pretrain(options with { RunDirectory = run }, train, TextWriter.Null)) { }
            double peak = (ProcessMemory.PeakResidentBytes() ?? 0) / 1048576.0;
            // The first epoch pays for warm-up (allocator, first-touch); the median of the others is the steady speed.
            var speeds = new MetricsCsv(new RunFolder(run).Metrics).Column("images_per_second").Skip(1).Select(e => e.Value).Order().ToArray();
            return (speeds.Length > 0 ? speeds[speeds.Length / 2] : double.NaN, peak);
        }
        finally
        {
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
        }
    }

    /// <summary>Runs bench/reference_step.py with Debian's python3-torch when it imports; otherwise says why not.</summary>
    static (string Version, double? ImagesPerSecond) PythonReference(string? python, ImageDataset train, int instances, int batch, int steps, TextWriter output)
    {
        string? script = FindUpwards(Path.Combine("bench", "reference_step.py"));
        string interpreter = python ?? (File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
        if (script == null) return ("(reference_step.py not found)", null);
        var start = new ProcessStartInfo(interpreter)
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            ArgumentList = { script, "--batch", $"{batch}", "--instances", $"{instances}", "--channels", $"{train.Channels}",
                             "--size", $"{train.Height}", "--steps", $"{steps}", "--threads", $"{get_num_threads()}" },
        };
        try
        {
            using var process = Process.Start(start)!;
            string stdout = process.StandardOutput.ReadToEnd();
            string stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                string reason = stderr.Contains("No module named 'torch'", StringComparison.Ordinal)
                    ? $"not installed ({interpreter} cannot import torch; apt-get install python3-torch libopenblas0-pthread)"
                    : $"failed: {stderr.Trim().Split('\n').Last()}";
                return ($"PyTorch {reason}", null);
            }
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            output.WriteLine($"reference: {lines[0]}");
            double rate = double.Parse(lines.Single(l => l.StartsWith("images/s:", StringComparison.Ordinal))["images/s:".Length..], CultureInfo.InvariantCulture);
            return (lines[0].Split(',')[0].Replace("torch ", ""), rate);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return ($"PyTorch not installed ({interpreter} not found)", null);
        }
    }

    static string? FindUpwards(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
