using System.Diagnostics;
using Conic.Augmentation;
using Conic.Data;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>The one pretraining loop every method shares: sampling, two augmented views, a step, logging, checkpoints.</summary>
public static class Trainer
{
    public const string CheckpointFile = "checkpoint.bin";
    public const string ConfigFile = "config.json";
    public const string MetricsFile = "metrics.csv";
    public const string OptimizerStatePrefix = "optimizer.";

    /// <summary>
    /// Pretrains in <see cref="PretrainOptions.RunDirectory"/>. With <paramref name="resume"/>, continues from that
    /// folder's checkpoint (same options required) and ends with the weights an uninterrupted run would have.
    /// </summary>
    public static PretrainedModel Pretrain(PretrainOptions options, ImageDataset train, TextWriter log, bool resume = false)
    {
        options = options with { Backbone = options.Backbone with { InputChannels = train.Channels } };
        options.Validate();
        var device = TorchRuntime.Initialize(options.Device, options.Threads);
        Directory.CreateDirectory(options.RunDirectory);
        string checkpointPath = Path.Combine(options.RunDirectory, CheckpointFile);

        var sampler = new InstanceSampler(train.Count, options.Instances, options.Seed);
        var model = PretrainedModel.Build(options, train, sampler.Count, device);
        var method = model.Method;
        var optimizer = new MomentumSgd(method.ParameterGroups(options.WeightDecay), options.Momentum);
        int startEpoch = 0;
        long step = 0;
        if (resume && File.Exists(checkpointPath))
        {
            var header = Checkpoint.ReadHeader(checkpointPath);
            EnsureSameOptions(checkpointPath, header.Options, options);
            Checkpoint.Load(checkpointPath, TrainingState(method, optimizer));
            startEpoch = header.CompletedEpochs;
            step = header.Step;
            log.WriteLine($"resuming {checkpointPath} after epoch {startEpoch}");
        }
        else if (resume)
        {
            log.WriteLine($"no checkpoint in {options.RunDirectory}; starting from scratch");
        }
        RunJson.WriteAtomically(Path.Combine(options.RunDirectory, ConfigFile), options);

        int stepsPerEpoch = sampler.BatchesPerEpoch(options.BatchSize);
        var schedule = new LearningRateSchedule(options.ScaledLearningRate, (long)(options.WarmupEpochs * stepsPerEpoch),
                                                (long)options.Epochs * stepsPerEpoch);
        var csv = new MetricsCsv(Path.Combine(options.RunDirectory, MetricsFile));
        csv.TruncateAfter(startEpoch);
        using var tensorBoard = new TensorBoardWriter(Path.Combine(options.RunDirectory, "tensorboard"));
        var progress = new ProgressBar(log, options.Epochs, stepsPerEpoch);
        var totalClock = Stopwatch.StartNew();
        int epochsThisRun = 0;

        for (int epoch = startEpoch + 1; epoch <= options.Epochs; epoch++)
        {
            method.train();
            var epochClock = Stopwatch.StartNew();
            using var generator = new Generator((ulong)Seeds.Derive(options.Seed, epoch, purpose: 2));
            double lossSum = 0, lr = 0;
            double[]? termSums = null;
            string[] termNames = [];
            int stepInEpoch = 0;
            foreach (var batch in sampler.EpochBatches(epoch, options.BatchSize))
            {
                using var scope = NewDisposeScope();
                lr = schedule.At(step);
                var images = BatchGather.Images(train, batch.Select(i => sampler.DatasetIndices[i]).ToArray()).to(device);
                var view1 = model.Augmenter.Augment(images, generator);
                var view2 = model.Augmenter.Augment(images, generator);
                var indices = tensor(batch.Select(i => (long)i).ToArray()).to(device);

                optimizer.ZeroGrad();
                var loss = method.TrainingStep(view1, view2, indices);
                loss.Total.backward();
                optimizer.Step(lr);

                double total = loss.Total.item<float>();
                if (!double.IsFinite(total))
                    throw new ConicException($"--lr: the loss became {total} at step {step}; lower the learning rate");
                lossSum += total;
                termNames = loss.Terms.Select(t => t.Name).ToArray();
                termSums ??= new double[termNames.Length];
                for (int t = 0; t < termNames.Length; t++) termSums[t] += loss.Terms[t].Value.item<float>();
                step++;
                stepInEpoch++;
                double imagesPerSecond = stepInEpoch * options.BatchSize / epochClock.Elapsed.TotalSeconds;
                progress.Update(epoch, stepInEpoch, lossSum / stepInEpoch, imagesPerSecond,
                                Remaining(epochClock.Elapsed / stepInEpoch, (long)(options.Epochs - epoch + 1) * stepsPerEpoch - stepInEpoch));
            }

            epochsThisRun++;
            var metrics = new EpochMetrics(epoch, step, lr, lossSum / stepInEpoch,
                termNames.Select((n, t) => (n, termSums![t] / stepInEpoch)).ToArray(),
                stepInEpoch * options.BatchSize / epochClock.Elapsed.TotalSeconds, epochClock.Elapsed.TotalSeconds);
            csv.Append(metrics);
            tensorBoard.AddScalar("train/loss", metrics.Loss, step);
            foreach (var (name, value) in metrics.Terms) tensorBoard.AddScalar($"train/{name}", value, step);
            tensorBoard.AddScalar("train/lr", lr, step);
            tensorBoard.AddScalar("train/images_per_second", metrics.ImagesPerSecond, step);
            tensorBoard.Flush();
            Checkpoint.Save(checkpointPath, model.Header(epoch, step), TrainingState(method, optimizer).Select(kv => (kv.Key, kv.Value)));
            progress.EndEpoch(metrics, Remaining(totalClock.Elapsed / epochsThisRun, options.Epochs - epoch));
        }
        optimizer.Dispose();
        return model;
    }

    static TimeSpan Remaining(TimeSpan perUnit, long units) => perUnit * Math.Max(0, units);

    /// <summary>Everything a checkpoint restores: the method's parameters and buffers, and the optimiser's momentum.</summary>
    static IReadOnlyDictionary<string, Tensor> TrainingState(SslMethod method, MomentumSgd optimizer)
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, value) in method.state_dict()) state["model." + name] = value;
        foreach (var (name, buffer) in optimizer.NamedBuffers()) state[OptimizerStatePrefix + name] = buffer;
        return state;
    }

    /// <summary>Where the run happens (folder, device, threads) may change on resume; what it computes may not.</summary>
    static void EnsureSameOptions(string checkpointPath, PretrainOptions saved, PretrainOptions requested)
    {
        var placeless = requested with { RunDirectory = saved.RunDirectory, Device = saved.Device, Threads = saved.Threads };
        if (placeless != saved)
            throw new ConicException($"{checkpointPath}: was made with different options; resume with the same options (see {ConfigFile}) or use a new --run folder");
    }
}
