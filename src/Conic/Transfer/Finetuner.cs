using System.Diagnostics;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Conic.Transfer;

/// <summary>Where a fine-tune run stands, and what rebuilds its network without the pretrained run.</summary>
public sealed record FinetuneCheckpointHeader(int CompletedEpochs, long Step, FinetuneOptions Options, BackboneOptions Backbone,
                                              IReadOnlyList<string> ClassNames, float[] ChannelMean, float[] ChannelStd, int Side,
                                              double TrainingSeconds);

/// <summary>
/// Trains a task's <see cref="DenseNetwork"/> (pretrained or random backbone) end to end, or its head alone, with
/// random horizontal flips and momentum SGD (one-epoch warm-up, cosine decay); validates and checkpoints every epoch
/// (a killed run resumes exactly), logs metrics.csv, lets the task write eval.json and its pictures, and writes report.html.
/// </summary>
public static class Finetuner
{
    internal const string ModelPrefix = "model.", OptimizerPrefix = "optimizer.";

    public static IReadOnlyList<string> Run(FinetuneOptions options, string runDirectory, bool resume, TextWriter log)
    {
        if (options.Problem() is string problem) throw new ConicException(problem);
        var folder = new RunFolder(runDirectory);
        using var runLock = folder.Lock();
        bool continues = folder.ContinuesCheckpoint(resume, path => $"fine-tuned for {Checkpoint.ReadHeader<FinetuneCheckpointHeader>(path).CompletedEpochs} epochs");
        var header = continues ? Checkpoint.ReadHeader<FinetuneCheckpointHeader>(folder.Checkpoint) : null;
        // A resumed run keeps its plan; only the epochs (to add some) and where it runs may change.
        if (header != null) options = header.Options with { Epochs = options.Epochs, Device = options.Device, Threads = options.Threads };
        var device = TorchRuntime.Initialize(options.Device, options.Threads);

        using var pretrained = header == null && options.InitRun != null ? PretrainedModel.Load(options.InitRun, options.Device, options.Threads) : null;
        int? channels = header?.Backbone.InputChannels ?? pretrained?.Backbone.Options.InputChannels;
        using var task = options.Task.Load(options, channels, header?.Side ?? options.ImageSize);
        if (header != null && !header.ClassNames.SequenceEqual(task.ClassNames))
            throw new ConicException($"{options.DataPath}: its classes differ from those the checkpoint in {runDirectory} was trained on");
        var normalization = header != null ? new InputNormalization(header.ChannelMean, header.ChannelStd)
            : pretrained?.Normalization ?? task.Statistics();

        manual_seed(options.Seed);
        var backbone = pretrained?.Backbone ?? new ResNet((header?.Backbone ?? options.Backbone) with { InputChannels = task.Channels });
        using var network = task.CreateNetwork(backbone);
        network.to(device);
        var arithmetic = device.type == TorchSharp.DeviceType.CPU
            ? ArithmeticCheck.Choose(backbone, task.Side, task.Side, options.BatchSize, options.Precision, ConvolutionKernels.Auto, TorchRuntime.CpuHasBFloat16())
            : ArithmeticChoice.Unchecked(options.Precision == Precision.Auto ? Precision.Float32 : options.Precision);
        log.WriteLine($"arithmetic: {arithmetic.Describe()}");
        if (options.FreezeBackbone)
            foreach (var parameter in backbone.parameters()) parameter.requires_grad = false;
        var trained = options.FreezeBackbone ? network.HeadParameters.ToList() : network.parameters().ToList();
        using var optimizer = new MomentumSgd([new ParameterGroup("all", trained, 1, options.WeightDecay)], options.Momentum);
        var state = network.state_dict().Select(kv => (ModelPrefix + kv.Key, kv.Value))
            .Concat(optimizer.NamedBuffers().Select(b => (OptimizerPrefix + b.Name, b.Buffer))).ToDictionary();
        if (header != null)
        {
            Checkpoint.Load<FinetuneCheckpointHeader>(folder.Checkpoint, state);
            log.WriteLine($"resuming {folder.Checkpoint} after epoch {header.CompletedEpochs}");
        }
        else RunJson.WriteAtomically(folder.Config, options);

        var metrics = new MetricsCsv(folder.Metrics);
        metrics.StartAfter(header?.CompletedEpochs ?? 0);
        int stepsPerEpoch = (task.TrainCount + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs, step = header?.Step ?? 0;
        double trainingSeconds = header?.TrainingSeconds ?? 0;
        log.WriteLine($"{task.Name}: {task.TrainCount} training images of {task.Side} px, {task.ClassNames.Count} classes; " +
                      $"backbone {options.InitRun ?? "random"}{(options.FreezeBackbone ? " (frozen)" : "")}");
        for (int epoch = (header?.CompletedEpochs ?? 0) + 1; epoch <= options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            arithmetic.Training.Apply([backbone]);
            network.train();
            if (options.FreezeBackbone) backbone.eval();
            var order = Enumerable.Range(0, task.TrainCount).ToArray();
            new Random(Seeds.Derive(options.Seed, epoch, 0)).Shuffle(order);
            var flips = new Random(Seeds.Derive(options.Seed, epoch, 1));
            double lossSum = 0, rate = 0;
            for (int start = 0; start < order.Length; start += options.BatchSize, step++)
            {
                using var scope = NewDisposeScope();
                var batch = order[start..Math.Min(order.Length, start + options.BatchSize)];
                var flipped = batch.Select(_ => flips.Next(2) == 1).ToArray();
                rate = LearningRate(options.LearningRate, step, stepsPerEpoch, totalSteps);
                optimizer.ZeroGrad();
                var loss = task.Loss(network, batch, flipped, normalization, device);
                loss.backward();
                optimizer.Step(rate);
                lossSum += loss.item<float>() * batch.Length;
            }
            double seconds = clock.Elapsed.TotalSeconds, meanLoss = lossSum / task.TrainCount;
            trainingSeconds += seconds;
            if (!double.IsFinite(meanLoss)) throw new ConicException($"{runDirectory}: the loss became {meanLoss} in epoch {epoch}; lower --lr");
            arithmetic.Evaluation.Apply([backbone]);
            var scores = task.Validate(network, normalization, device, options.BatchSize);
            metrics.Append(new EpochMetrics(epoch, step, rate, meanLoss, scores.Select(s => ("val_" + s.Name, s.Value)).ToArray(),
                                            task.TrainCount / seconds, seconds, ElapsedMinutes: trainingSeconds / 60));
            Checkpoint.Save(folder.Checkpoint, new FinetuneCheckpointHeader(epoch, step, options, backbone.Options, task.ClassNames,
                                                                            normalization.Mean, normalization.Std, task.Side, trainingSeconds),
                            state.Select(kv => (kv.Key, kv.Value)));
            log.WriteLine($"epoch {epoch}/{options.Epochs} loss {meanLoss:F4} lr {rate:G3} {task.TrainCount / seconds:F0} img/s {seconds:F1}s  " +
                          string.Join(" ", scores.Select(s => $"val {s.Name} {100 * s.Value:F2} %")));
        }
        arithmetic.Evaluation.Apply([backbone]);
        double imagesPerSecond = metrics.Column("images_per_second").Select(c => c.Value).DefaultIfEmpty(0).Last();
        var result = task.Finish(network, normalization, device, options.BatchSize, folder,
                                 new FinetuneSummary(options.InitRun ?? "random", options.FreezeBackbone, imagesPerSecond));
        return [.. result, $"report: {FinetuneReport.Write(folder, options, result)}"];
    }

    /// <summary>Warm-up over the first epoch, then cosine to zero at the last step.</summary>
    static double LearningRate(double peak, long step, int warmupSteps, long totalSteps) =>
        step < warmupSteps ? peak * (step + 1) / warmupSteps
            : 0.5 * peak * (1 + Math.Cos(Math.PI * (step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps)));
}
