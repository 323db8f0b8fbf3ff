using System.Diagnostics;
using Conic.Augmentation;
using Conic.Data;
using Conic.Distributed;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Training;

/// <summary>The one pretraining loop every method shares: sampling, two augmented views, a step, logging, checkpoints.</summary>
public static class Trainer
{
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
        int shareSize = options.BatchSize / processes.Size, shareStart = processes.Rank * shareSize;
        var device = TorchRuntime.Initialize(options.Device, options.Threads);
        using var runLock = processes.IsMain ? new RunFolder(options.RunDirectory).Lock() : null;
        var folder = new RunFolder(options.RunDirectory);
        string checkpointPath = folder.Checkpoint;

        var sampler = new InstanceSampler(train.Count, options.Instances, options.Seed, options.InstanceWindow, options.Epochs);
        var model = PretrainedModel.Build(options, train, sampler.Count, device, processes);
        var method = model.Method;
        processes.RequireSame(("options", System.Text.Json.JsonSerializer.Serialize(options with { Threads = 0 }, RunJson.Options)),
                              ("data", $"{train.Count} images {train.Channels}x{train.Height}x{train.Width}, mean {string.Join(' ', model.Normalization.Mean)}, std {string.Join(' ', model.Normalization.Std)}"));
        if (options.WarmupEpochs > options.Epochs)
            log.WriteLine($"note: --warmup-epochs {options.WarmupEpochs} is more than --epochs {options.Epochs}: the learning rate peaks at {options.Epochs / options.WarmupEpochs:P0} of its target");
        if (device.type == TorchSharp.DeviceType.CPU)
            MemoryEstimate.CheckFits(2L * shareSize * model.Backbone.TrainingBytesPerImage(train.Height, train.Width),
                                     $"--batch-size {options.BatchSize} of {train.Height}x{train.Width} px images (two views each)");
        var checkClock = Stopwatch.StartNew();
        // Each rank checks its own CPU and an arithmetic any rank rejects is rejected by all: one model, one arithmetic.
        var arithmetic = model.CheckArithmetic(2 * shareSize, options.Precision, options.Kernels,
                                               processes.IsDistributed ? processes.FromEveryRank : null);
        log.WriteLine($"arithmetic: {arithmetic.Describe()} ({checkClock.Elapsed.TotalSeconds:F1} s)");
        if (processes.IsDistributed && arithmetic.WantsOneDnnIsaCap)
            log.WriteLine($"note: these ranks cannot restart themselves with oneDNN held to AVX2, which the check found right here on a single process; " +
                          $"start them with 'mpirun -x {ConvolutionArithmetic.IsaCapVariable}=AVX2' (or use --processes N, which does): faster than the native kernels");
        // Ranks that chose alike by their own checks but run another libtorch or ISA cap would still differ.
        processes.RequireSame(("convolution arithmetic (pass --precision fp32 --conv-kernels native to make them agree)",
                               $"{arithmetic.Training} / {arithmetic.Evaluation}"));
        if (device.type == TorchSharp.DeviceType.CPU) log.WriteLine($"memory allocator: {MemoryAllocator.Describe()}");
        var groups = method.ParameterGroups(options.WeightDecayOrDefault);
        var optimizer = new MomentumSgd(groups, options.Momentum, options.OptimizerOrDefault == OptimizerKind.Lars ? options.LarsEta : null);
        var averager = GradientAveragerFor(method, groups, processes);
        var state = new RankState(method, optimizer, processes);
        // One process with --sync-bn computes BatchNorm the same way (over its whole batch), so that it is the exact reference.
        using var synchronizedNorms = options.SyncBatchNorm ? BatchNorms.Synchronize(x => Collectives.SumAcross(processes, x)) : null;
        if (processes.IsDistributed)
            log.WriteLine($"distributed: {processes.Size} processes x {get_num_threads()} threads, batch {options.BatchSize} = {processes.Size} x {shareSize}, " +
                          $"gradients averaged in {averager.BucketCount} bucket{(averager.BucketCount == 1 ? "" : "s")}, BatchNorm {(options.SyncBatchNorm ? "synchronised" : "per process")}" +
                          (method.RowShardedState.Count > 0 ? $", {string.Join(", ", method.RowShardedState.Keys)} split over the processes" : ""));
        if (options.Augmentation.SmallCrops > 0 && !method.UsesSmallCrops)
            throw new ConicException($"--small-crops: method '{options.Method}' does not use small crops (swav does)");
        int startEpoch = 0;
        long step = 0;
        double spentSeconds = 0, budgetSeconds = 0;
        bool resumed = false;
        if (processes.IsMain && folder.ContinuesCheckpoint(resume, path => $"checkpoint after epoch {Checkpoint.ReadHeader(path).CompletedEpochs}"))
        {
            var header = Checkpoint.ReadHeader(checkpointPath);
            if (!ComputesTheSame(header.Options, options))
                throw new ConicException($"{checkpointPath}: was made with different options; resume with the same options (see {Path.GetFileName(folder.Config)}) or use a new --run folder");
            if (header.ImageHeight > 0 && (header.ImageHeight, header.ImageWidth) != (train.Height, train.Width))
                throw new ConicException($"{checkpointPath}: was trained on {header.ImageHeight}x{header.ImageWidth} images, the data now gives {train.Height}x{train.Width}; " +
                                         "resume with the run's image size");
            state.Load(checkpointPath);
            resumed = true;
            startEpoch = header.CompletedEpochs;
            step = header.Step;
            (spentSeconds, budgetSeconds) = (header.TrainingSeconds, header.TrainingBudgetSeconds);
            log.WriteLine($"resuming {checkpointPath} after epoch {startEpoch}");
        }
        else if (resume && processes.IsMain)
        {
            log.WriteLine($"no checkpoint in {options.RunDirectory}; starting from scratch");
        }
        // Every rank starts from rank 0's weights and position (its checkpoint, when it resumed one).
        if (processes.IsDistributed)
        {
            var position = processes.FromMain([resumed ? 1 : 0, startEpoch, step, spentSeconds, budgetSeconds]);
            (resumed, startEpoch, step, spentSeconds, budgetSeconds) = (position[0] == 1, (int)position[1], (long)position[2], position[3], position[4]);
            state.ShareFromMain(resumed);
        }
        if (processes.IsMain) RunJson.WriteAtomically(folder.Config, options);
        int badImages = processes.IsMain ? ListBadImages(folder, train, 0, log) : 0;

        int stepsPerEpoch = sampler.BatchesPerEpoch(options.BatchSize);
        long warmupSteps = (long)(options.WarmupEpochs * stepsPerEpoch);
        bool budgeted = options.TimeBudgetMinutes > 0;
        if (budgeted && budgetSeconds <= 0)
        {
            // Rank 0 times evaluation, which it will run alone, while the other ranks wait without taking a core.
            double planned = processes.IsMain ? budget.TrainingSeconds(options.TimeBudgetMinutes, model, log) : 0;
            processes.WaitQuietly();
            budgetSeconds = processes.FromMain(planned);
        }
        TrainingSchedule schedule = budgeted
            ? new TimeBudgetSchedule(options.ScaledLearningRate, warmupSteps, budgetSeconds)
            : new StepSchedule(options.ScaledLearningRate, warmupSteps, (long)options.Epochs * stepsPerEpoch);
        var csv = processes.IsMain ? new MetricsCsv(folder.Metrics) : null;
        csv?.StartAfter(startEpoch);
        using var tensorBoard = processes.IsMain ? new TensorBoardWriter(folder.TensorBoard) : null;
        var progressBar = new ProgressBar(log, budgeted ? null : options.Epochs, stepsPerEpoch);
        var trainingClock = Stopwatch.StartNew();
        double lastRate = schedule.RateAt(Math.Max(0, step - 1), spentSeconds);
        double Elapsed() => spentSeconds + trainingClock.Elapsed.TotalSeconds;
        // Decisions taken from the clock (stop, the learning rate, the window) use rank 0's, so that all ranks agree.
        double SharedElapsed() => processes.FromMain(Elapsed());

        // A time-budget run takes epochs until its time is spent and stops mid-epoch at the deadline.
        bool budgetSpent = budgeted && schedule.IsOver(step, spentSeconds);
        double communicationAtStart = processes.CommunicationSeconds;
        for (int epoch = startEpoch + 1; budgeted ? !budgetSpent : epoch <= options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            long remainingSteps = (long)(options.Epochs - epoch + 1) * stepsPerEpoch;
            TimeSpan Remaining(double epochSeconds, int stepsDone) => budgeted
                ? TimeSpan.FromSeconds(Math.Max(0, budgetSeconds - Elapsed()))
                : TimeSpan.FromSeconds(epochSeconds / Math.Max(1, stepsDone) * (remainingSteps - stepsDone));
            var sums = new LossSums();
            method.train();
            // Two generators: the input pipeline may run on another thread while the method draws its own numbers.
            using var generator = new Generator((ulong)Seeds.Derive(options.Seed, epoch, purpose: 2));
            using var augmentationGenerator = new Generator((ulong)Seeds.Derive(options.Seed, epoch, purpose: 3));
            // This rank's share of the global batch, augmented with the random numbers of those rows of the global batch.
            PreparedBatch Prepare(int[] batch)
            {
                var share = batch[shareStart..(shareStart + shareSize)];
                return PreparedBatch.Make(model.Augmenter, train, share.Select(i => sampler.DatasetIndices[i]).ToArray(), share, device, augmentationGenerator,
                                          method.NeedsLabels, new BatchShare(batch.Length, shareStart));
            }
            // A time-budget run's window slides with the time spent, as its learning rate does.
            var batches = sampler.EpochBatches(epoch, options.BatchSize, budgeted ? schedule.Progress(step, SharedElapsed()) : null);
            foreach (var prepared in options.Prefetch ? PreparedBatch.Prefetch(batches, Prepare) : batches.Select(Prepare))
            {
                using var scope = NewDisposeScope();
                using var input = prepared;
                if (CancellationRequested(cancellation, processes))
                {
                    log.WriteLine($"cancelled in epoch {epoch} after {sums.Steps} of its steps: the run folder holds epoch {epoch - 1}; resume to continue");
                    optimizer.Dispose();
                    model.Dispose();
                    throw new OperationCanceledException(cancellation);
                }
                double elapsed = budgeted ? SharedElapsed() : Elapsed();
                if (schedule.IsOver(step, elapsed)) break;
                double rate = schedule.RateAt(step, elapsed);
                var loss = Step(method, optimizer, new TrainingBatch(prepared.Views, prepared.Indices, schedule.Progress(step, elapsed), generator, Labels: prepared.Labels), rate,
                                averager);
                if (!sums.Add(loss)) throw new ConicException(DiagnoseNonFiniteLoss(model, options, loss, step, rate));
                lastRate = rate;
                step++;
                double imagesPerSecond = sums.Steps * options.BatchSize / clock.Elapsed.TotalSeconds;
                var left = Remaining(clock.Elapsed.TotalSeconds, sums.Steps);
                progressBar.Update(epoch, sums.Steps, sums.MeanLoss, imagesPerSecond, left);
                progress?.Report(new TrainingProgress(epoch, sums.Steps, stepsPerEpoch, step, sums.MeanLoss, imagesPerSecond, left));
            }

            if (sums.Steps == 0)
            {
                // The budget ran out before this epoch's first step (a step slower than the last epoch's): the last
                // checkpoint holds these weights; record its budget as spent, so a resumed run trains no further.
                state.Save(checkpointPath, model.Header(epoch - 1, step, Math.Max(Elapsed(), budgetSeconds), budgetSeconds));
                break;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            // Less time left than one more step takes counts as spent: the next epoch would end before its first step.
            budgetSpent = budgeted && schedule.IsOver(step, processes.FromMain(Elapsed() + seconds / Math.Max(1, sums.Steps)));
            bool lastEpoch = budgeted ? budgetSpent : epoch == options.Epochs;
            bool monitorNow = monitor != null && options.MonitorEvery > 0 && (epoch % options.MonitorEvery == 0 || lastEpoch) && processes.IsMain;
            sums.AverageOver(processes);
            double? communicationShare = processes.IsDistributed ? (processes.CommunicationSeconds - communicationAtStart) / Math.Max(seconds, 1e-9) : null;
            communicationAtStart = processes.CommunicationSeconds;
            double? knn = monitorNow ? monitor!(model) : null;
            var metrics = new EpochMetrics(epoch, step, lastRate, sums.MeanLoss, sums.MeanTerms(),
                                           sums.Steps * options.BatchSize / Math.Max(seconds, 1e-9), seconds, knn, Elapsed() / 60, communicationShare);
            csv?.Append(metrics);
            if (processes.IsMain) badImages = ListBadImages(folder, train, badImages, log);
            tensorBoard?.Add(metrics);
            double trainedSeconds = budgetSpent ? Math.Max(Elapsed(), budgetSeconds) : Elapsed();
            // The replicas take identical steps, but an all-reduce need not round alike on every rank: rank 0's state,
            // which the checkpoint holds, is shared again once an epoch, so no drift outlives an epoch.
            if (processes.IsDistributed) state.ShareFromMain(resumed: false);
            state.Save(checkpointPath, model.Header(epoch, step, trainedSeconds, budgetSeconds));
            var remaining = budgeted ? Remaining(seconds, sums.Steps) : progressBar.Remaining(epoch, clock.Elapsed.TotalSeconds);
            progressBar.EndEpoch(metrics, remaining);
            progress?.Report(new TrainingProgress(epoch, sums.Steps, stepsPerEpoch, step, metrics.Loss, metrics.ImagesPerSecond, remaining, metrics));
        }
        if (budgeted) log.WriteLine($"time budget: trained {step} steps ({(double)step / stepsPerEpoch:F1} epochs) in {Elapsed() / 60:F1} min");
        optimizer.Dispose();
        // Evaluation and export see the float32 network.
        model.UseEvaluationArithmetic();
        return model;
    }

    /// <summary>Whether to stop before the next step: rank 0's token decides for all ranks (one broadcast per step, only for a cancellable token).</summary>
    static bool CancellationRequested(CancellationToken cancellation, ProcessGroup processes) =>
        cancellation.CanBeCanceled && (processes.IsDistributed ? processes.FromMain(cancellation.IsCancellationRequested ? 1.0 : 0.0) == 1
                                                               : cancellation.IsCancellationRequested);

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
    public static MethodLoss Step(SslMethod method, MomentumSgd optimizer, TrainingBatch batch, double learningRate,
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
        if (model.Device.type == TorchSharp.DeviceType.CPU)
        {
            // The run's weights may be NaN by now; the kernels are checked on a fresh network of the same shape.
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
    /// Writes bad-images.txt (file, tab, problem) when more files of <paramref name="train"/> were found unreadable than
    /// the <paramref name="listed"/> ones, says so, and returns how many are listed now.
    /// </summary>
    static int ListBadImages(RunFolder folder, ImageDataset train, int listed, TextWriter log)
    {
        var bad = train.BadFiles.OrderBy(b => b.Key, StringComparer.Ordinal).ToArray();
        if (bad.Length == listed) return listed;
        AtomicFile.WriteText(folder.BadImages, string.Concat(bad.Select(b => $"{b.Key}\t{b.Value}\n")));
        log.WriteLine($"warning: {bad.Length} unreadable image{(bad.Length == 1 ? "" : "s")} in {train.Source}" +
                      (listed > 0 ? $" ({bad.Length - listed} found while decoding)" : "") + $", listed in {folder.BadImages}");
        return bad.Length;
    }

    /// <summary>Running sums of the loss and its terms over an epoch; a non-finite loss is refused (the trainer diagnoses it).</summary>
    sealed class LossSums
    {
        double _loss;
        double[] _terms = [];
        string[] _names = [];

        public int Steps { get; private set; }
        public double MeanLoss => _loss / Math.Max(1, Steps);

        /// <summary>Adds a finite loss; false (nothing added) when it is not finite.</summary>
        public bool Add(MethodLoss loss)
        {
            double total = loss.Total.item<float>();
            if (!double.IsFinite(total)) return false;
            if (Steps == 0)
            {
                _names = loss.Terms.Select(t => t.Name).ToArray();
                _terms = new double[_names.Length];
            }
            _loss += total;
            for (int t = 0; t < _terms.Length; t++) _terms[t] += loss.Terms[t].Value.item<float>();
            Steps++;
            return true;
        }

        /// <summary>Makes the sums the mean of every rank's (each rank took as many steps, on equal shares).</summary>
        public void AverageOver(ProcessGroup processes)
        {
            if (!processes.IsDistributed) return;
            using var values = tensor(_terms.Prepend(_loss).Select(v => (float)v).ToArray());
            processes.AllReduce(values);
            using var sum = values.div(Kept(processes.Size));
            var mean = sum.data<float>().ToArray();
            _loss = mean[0];
            for (int t = 0; t < _terms.Length; t++) _terms[t] = mean[t + 1];
        }

        public IReadOnlyList<(string Name, double Value)> MeanTerms() =>
            _names.Select((name, t) => (name, _terms[t] / Math.Max(1, Steps))).ToArray();
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
public enum StepPart { Forward, Backward, Optimizer, AfterStep }
