using Conic.Augmentation;
using Conic.Data;
using Conic.Distributed;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>The one pretraining loop every method shares: sampling, two augmented views, a step, logging, checkpoints.</summary>
public static class Trainer
{
    /// <summary>The prefix of the optimiser's buffers among a checkpoint's tensors.</summary>
    public const string OptimizerStatePrefix = "optimizer.";

    /// <summary>
    /// Pretrains in <see cref="PretrainOptions.RunDirectory"/>. With <paramref name="resume"/>, continues from that
    /// folder's checkpoint (same options required) and ends with the weights an uninterrupted run would have. The
    /// <paramref name="monitor"/>, when given, measures an accuracy every <see cref="PretrainOptions.MonitorEvery"/> epochs
    /// (Evaluation's KnnMonitor; it must only read the model, leaving it in training mode).
    /// </summary>
    /// <param name="budget">For a <see cref="PretrainOptions.TimeBudgetMinutes"/> run: when it started and its evaluation's
    /// expected time; without it the budget counts from this call and leaves no time for evaluation.</param>
    /// <param name="processes">The ranks of a data-parallel run: each trains on its share of every (global) batch,
    /// gradients are averaged, rank 0 alone writes the run folder and monitors. Default: one process.</param>
    /// <param name="progress">Told after every step and every epoch (<see cref="TrainingProgress"/>), on the training thread.</param>
    /// <param name="cancellation">
    /// Stops training before its next step with <see cref="OperationCanceledException"/>; the epoch under way is
    /// dropped, so the run folder holds the last finished epoch, and <c>resume</c> continues to the weights of an
    /// uninterrupted run. In a data-parallel run rank 0's token decides (every rank passes one, as every rank makes the
    /// same calls).
    /// </param>
    public static PretrainedModel Pretrain(PretrainOptions options, ImageDataset train, TextWriter log, bool resume = false,
                                           Func<PretrainedModel, double>? monitor = null, RunBudget? budget = null, ProcessGroup? processes = null,
                                           IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        budget ??= new RunBudget(DateTime.UtcNow, _ => 0);
        processes ??= ProcessGroup.Single;
        int requestedBatch = options.BatchSize;
        options = Resolve(options, train);
        if (options.BatchSize < requestedBatch)
            log.WriteLine($"note: batch size {requestedBatch} is more than the {options.BatchSize} instances per epoch; training with batch {options.BatchSize}");
        options.Validate();
        if (options.BatchSize % processes.Size != 0)
            throw new ConicException($"--batch-size {options.BatchSize}: the global batch must split evenly over the {processes.Size} processes");
        var device = TorchRuntime.Initialize(options.Device, options.Threads);
        using var run = TrainingRun<CheckpointHeader>.Open(options.RunDirectory, resume, header => $"checkpoint after epoch {header.CompletedEpochs}",
                                                           header => header.CompletedEpochs, log, writes: processes.IsMain);
        var pretraining = Pretraining.Prepare(options, train, processes, run, device, log);
        // One process with --sync-bn computes BatchNorm the same way (over its whole batch), so that it is the exact reference.
        using var synchronizedNorms = options.SyncBatchNorm ? BatchNorms.Synchronize(x => Collectives.SumAcross(processes, x)) : null;
        pretraining.Restore();
        pretraining.Plan(budget);
        return pretraining.Train(monitor, progress, cancellation);
    }

    /// <summary>
    /// What averages <paramref name="method"/>'s gradients over <paramref name="processes"/>: the groups of its row-sharded
    /// state (<see cref="SslMethod.RowShardedState"/>) are each rank's own, the others replicated.
    /// </summary>
    public static GradientAverager GradientAveragerFor(SslMethod method, IReadOnlyList<ParameterGroup> groups, ProcessGroup processes)
    {
        var sharded = groups.Where(g => method.RowShardedState.ContainsKey(g.Name)).ToArray();
        return new GradientAverager(processes, groups.Except(sharded).SelectMany(g => g.Parameters).ToArray(), sharded.SelectMany(g => g.Parameters).ToArray());
    }

    /// <summary>One optimisation step: the method's loss, gradients, the update, then the method's own state (banks, EMA).</summary>
    /// <param name="gradients">In a data-parallel run, averages the gradients over the ranks before the update.</param>
    /// <param name="finished">Called as each part ends, for profiling (bench profile).</param>
    public static MethodLoss Step(SslMethod method, IOptimizer optimizer, TrainingBatch batch, double learningRate,
                                  GradientAverager? gradients = null, Action<StepPart>? finished = null)
    {
        batch = batch with { LearningRate = learningRate };
        optimizer.ZeroGrad();
        var loss = method.TrainingStep(batch);
        finished?.Invoke(StepPart.Forward);
        loss.Total.backward();
        gradients?.Average();
        finished?.Invoke(StepPart.Backward);
        optimizer.Step(learningRate);
        finished?.Invoke(StepPart.Optimizer);
        method.AfterOptimizerStep(batch, loss);
        finished?.Invoke(StepPart.AfterStep);
        return loss;
    }

    /// <summary>
    /// Why the loss stopped being finite, as far as can be told: which term, whether this CPU's convolutions still pass
    /// the arithmetic check (its faults are intermittent), otherwise the optimisation and its learning rate.
    /// </summary>
    internal static string DiagnoseNonFiniteLoss(PretrainedModel model, PretrainOptions options, MethodLoss loss, long step, double learningRate)
    {
        var term = loss.Terms.FirstOrDefault(t => !float.IsFinite(t.Value.item<float>()));
        static string Text(Tensor value) => value.item<float>().ToString(System.Globalization.CultureInfo.InvariantCulture);
        string what = (term == null ? $"the loss became {Text(loss.Total)}" : $"the loss term '{term.Name}' became {Text(term.Value)}") + $" at step {step}";
        // The run's weights may be NaN by now; a ResNet's kernels are checked on a fresh network of the same shape.
        if (model.Device.type == TorchSharp.DeviceType.CPU && options.Backbone.IsResNet)
        {
            using var fresh = new ResNet(options.Backbone);
            var (height, width) = model.ImageSize;
            var trial = ArithmeticCheck.Measure(fresh, height, width, 2 * options.BatchSize, [model.Arithmetic.Training]).Single();
            if (!trial.Agrees)
                return $"{what}: this CPU ({TorchRuntime.CpuDescription()}) now computes convolutions wrong although they passed at start-up " +
                       $"(the fault is intermittent): {trial}; continue with --resume --conv-kernels native";
        }
        return $"{what} with learning rate {learningRate:G3}, and this CPU's convolutions still pass the arithmetic check, so the " +
               $"optimisation diverged: lower --lr (now {options.BaseLearningRate:G3} for batch 256)" +
               (term != null && term.Name != "loss" ? $" or the weight of the '{term.Name}' term" : "");
    }

    /// <summary>
    /// The options as a run on <paramref name="train"/> saves them: input channels, image size (IDX files keep their own
    /// size) and the intensity jitter left to the images from the data, the batch no larger than an epoch's instances, method defaults filled in.
    /// </summary>
    public static PretrainOptions Resolve(PretrainOptions options, ImageDataset train)
    {
        // A batch cannot hold more instances than an epoch has (a small folder with the default batch).
        int perEpoch = options.InstanceWindow > 0 ? options.InstanceWindow : options.Instances > 0 ? options.Instances : train.Count;
        if (options.MethodSettings is SupervisedOptions { Classes: 0 } supervised)
        {
            if (train.Labels == null) throw new ConicException($"{train.Source}: --method supervised needs labelled images (IDX labels or class subfolders)");
            options = options with { MethodSettings = supervised with { Classes = train.ClassCount } };
        }
        return (options with
        {
            Backbone = options.Backbone with { InputChannels = train.Channels },
            Augmentation = options.Augmentation.ForChannels(train.Channels),
            ImageSize = train.Height == train.Width ? train.Height : options.ImageSize,
            BatchSize = perEpoch >= 2 ? Math.Min(options.BatchSize, perEpoch) : options.BatchSize,
        }).WithMethodDefaults();
    }

    /// <summary>
    /// Whether a run saved with <paramref name="saved"/> computes what <paramref name="requested"/> (resolved) asks for:
    /// where and how it happens (folder, device, threads, prefetching, monitoring, convolution kernels) may differ, and
    /// more epochs extend it: the cosine schedule is recomputed for the new total and followed from the next step, so
    /// the weights differ from a run started with that total. A sliding instance window is laid out over the total and
    /// cannot be extended.
    /// </summary>
    public static bool ComputesTheSame(PretrainOptions saved, PretrainOptions requested)
    {
        var placeless = requested with
        {
            RunDirectory = saved.RunDirectory, Device = saved.Device, Threads = saved.Threads, MonitorEvery = saved.MonitorEvery,
            // Synchronised BatchNorm over P ranks computes what one process does: a run may resume on other ranks.
            SyncBatchNorm = saved.SyncBatchNorm,
            Prefetch = saved.Prefetch, Kernels = saved.Kernels, Workers = saved.Workers, OnBadImage = saved.OnBadImage,
            // Runs before 2026-12-01 saved the requested size for IDX data too; the checkpoint header's trained size is checked instead.
            ImageSize = saved.ImageSize,
            // A time-budget run does not use its epochs; more epochs extend a run planned in epochs.
            Epochs = saved.TimeBudgetMinutes > 0 || (requested.Epochs > saved.Epochs && saved.InstanceWindow == 0) ? saved.Epochs : requested.Epochs,
        };
        // requested has its method defaults written in already; older checkpoints may leave them to the method.
        return placeless == saved.WithMethodDefaults();
    }

    /// <summary>
    /// The settings of <paramref name="requested"/> that a resume of the run made with <paramref name="saved"/> cannot
    /// take, as "--flag value (run: value)": those that change what the run computes (see <see cref="ComputesTheSame"/>).
    /// </summary>
    public static IReadOnlyList<string> ResumeConflicts(PretrainOptions saved, PretrainOptions requested)
    {
        if (requested.Method != saved.Method) return [$"--method {requested.Method} (run: {saved.Method})"];
        var conflicts = new List<string>();
        foreach (var setting in PretrainOptions.SettingGroups(saved.MethodDefinition).SelectMany(g => g.Settings))
        {
            string want = setting.Current(requested), had = setting.Current(saved.WithMethodDefaults());
            if (want == had) continue;
            bool changes;
            try
            {
                changes = !ComputesTheSame(saved, setting.Apply(saved, want).WithMethodDefaults());
            }
            catch (ConicException)
            {
                changes = true;
            }
            if (changes) conflicts.Add($"{setting.Flag} {want} (run: {had})");
        }
        return conflicts;
    }
}

/// <summary>The parts of <see cref="Trainer.Step"/>, in order (the backward includes averaging gradients over ranks).</summary>
public enum StepPart
{
    /// <summary>The method's forward pass and loss.</summary>
    Forward,
    /// <summary>Gradients, averaged over the ranks.</summary>
    Backward,
    /// <summary>The optimiser's update.</summary>
    Optimizer,
    /// <summary>The method's own state after the update (banks, momentum copies).</summary>
    AfterStep,
}
