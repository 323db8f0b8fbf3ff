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

/// <summary>
/// One pretraining run on one rank, in the order it happens: <see cref="Prepare"/> builds the model, checks its
/// arithmetic and makes the optimiser; <see cref="Restore"/> continues the run's checkpoint; <see cref="Plan"/> fixes
/// the learning-rate schedule; <see cref="Train"/> runs the epochs. Its fields are where the run stands.
/// </summary>
sealed class Pretraining
{
    readonly PretrainOptions _options;
    readonly ImageDataset _train;
    readonly ProcessGroup _processes;
    readonly TrainingRun<CheckpointHeader> _run;
    readonly TextWriter _log;
    readonly Device _device;
    readonly InstanceSampler _sampler;
    readonly PretrainedModel _model;
    readonly IOptimizer _optimizer;
    readonly GradientAverager _averager;
    readonly RankState _state;
    readonly int _shareSize, _shareStart, _stepsPerEpoch;
    readonly Stopwatch _trainingClock = new();
    int _startEpoch, _badImages;
    long _step;
    double _spentSeconds, _budgetSeconds;
    TrainingSchedule _schedule = null!;

    Pretraining(PretrainOptions options, ImageDataset train, ProcessGroup processes, TrainingRun<CheckpointHeader> run, TextWriter log,
                Device device, InstanceSampler sampler, PretrainedModel model)
    {
        (_options, _train, _processes, _run, _log, _device, _sampler, _model) = (options, train, processes, run, log, device, sampler, model);
        _shareSize = options.BatchSize / processes.Size;
        _shareStart = processes.Rank * _shareSize;
        _stepsPerEpoch = sampler.BatchesPerEpoch(options.BatchSize);
        var groups = model.Method.ParameterGroups(options.WeightDecayOrDefault);
        _optimizer = options.OptimizerOrDefault switch
        {
            OptimizerKind.AdamW => new Adam(groups, decoupledWeightDecay: true),
            OptimizerKind.Lars => new MomentumSgd(groups, options.Momentum, options.LarsEta),
            _ => new MomentumSgd(groups, options.Momentum),
        };
        _averager = Trainer.GradientAveragerFor(model.Method, groups, processes);
        _state = new RankState(model.Method, _optimizer, processes);
    }

    SslMethod Method => _model.Method;
    bool Budgeted => _options.TimeBudgetMinutes > 0;
    double Elapsed() => _spentSeconds + _trainingClock.Elapsed.TotalSeconds;
    /// <summary>Decisions taken from the clock (stop, the learning rate, the window) use rank 0's, so that all ranks agree.</summary>
    double SharedElapsed() => _processes.FromMain(Elapsed());

    /// <summary>The model for <paramref name="options"/> (resolved and valid) on <paramref name="train"/>, its arithmetic checked, and its optimiser.</summary>
    public static Pretraining Prepare(PretrainOptions options, ImageDataset train, ProcessGroup processes, TrainingRun<CheckpointHeader> run,
                                      Device device, TextWriter log)
    {
        var sampler = new InstanceSampler(train.Count, options.Instances, options.Seed, options.InstanceWindow, options.Epochs);
        var model = PretrainedModel.Build(options, train, sampler.Count, device, processes, fromInitialWeights: run.Resumed is null);
        processes.RequireSame(("options", System.Text.Json.JsonSerializer.Serialize(options with { Threads = 0 }, RunJson.Options)),
                              ("data", $"{train.Count} images {train.Channels}x{train.Height}x{train.Width}, mean {string.Join(' ', model.Normalization.Mean)}, std {string.Join(' ', model.Normalization.Std)}"));
        if (options.WarmupEpochs > options.Epochs)
            log.WriteLine($"note: --warmup-epochs {options.WarmupEpochs} is more than --epochs {options.Epochs}: the learning rate peaks at {options.Epochs / options.WarmupEpochs:P0} of its target");
        int shareSize = options.BatchSize / processes.Size;
        if (device.type == TorchSharp.DeviceType.CPU)
            MemoryEstimate.CheckFits(2L * shareSize * model.Backbone.TrainingBytesPerImage(train.Height, train.Width),
                                     $"--batch-size {options.BatchSize} of {train.Height}x{train.Width} px images (two views each)");
        CheckArithmetic(model, options, processes, shareSize, log);
        if (device.type == TorchSharp.DeviceType.CPU) log.WriteLine($"memory allocator: {MemoryAllocator.Describe()}");
        if (options.Augmentation.SmallCrops > 0 && !model.Method.UsesSmallCrops)
            throw new ConicException($"--small-crops: method '{options.Method}' does not use small crops (swav does)");
        var pretraining = new Pretraining(options, train, processes, run, log, device, sampler, model);
        if (processes.IsDistributed)
            log.WriteLine($"distributed: {processes.Size} processes x {get_num_threads()} threads, batch {options.BatchSize} = {processes.Size} x {shareSize}, " +
                          $"gradients averaged in {pretraining._averager.BucketCount} bucket{(pretraining._averager.BucketCount == 1 ? "" : "s")}, BatchNorm {(options.SyncBatchNorm ? "synchronised" : "per process")}" +
                          (model.Method.RowShardedState.Count > 0 ? $", {string.Join(", ", model.Method.RowShardedState.Keys)} split over the processes" : ""));
        return pretraining;
    }

    static void CheckArithmetic(PretrainedModel model, PretrainOptions options, ProcessGroup processes, int shareSize, TextWriter log)
    {
        var checkClock = Stopwatch.StartNew();
        // Each rank checks its own CPU and an arithmetic any rank rejects is rejected by all: one model, one arithmetic.
        var arithmetic = model.CheckArithmetic(2 * shareSize, options.Precision, options.Kernels, processes.IsDistributed ? processes.FromEveryRank : null);
        log.WriteLine($"arithmetic: {arithmetic.Describe()} ({checkClock.Elapsed.TotalSeconds:F1} s)");
        if (processes.IsDistributed && arithmetic.WantsOneDnnIsaCap)
            log.WriteLine($"note: these ranks cannot restart themselves with oneDNN held to AVX2, which the check found right here on a single process; " +
                          $"start them with 'mpirun -x {ConvolutionArithmetic.IsaCapVariable}=AVX2' (or use --processes N, which does): faster than the native kernels");
        // Ranks that chose alike by their own checks but run another libtorch or ISA cap would still differ.
        processes.RequireSame(("convolution arithmetic (pass --precision fp32 --conv-kernels native to make them agree)",
                               $"{arithmetic.Training} / {arithmetic.Evaluation}"));
    }

    /// <summary>
    /// Continues the run's checkpoint when it has one (made with the same options, on images of the same size), then
    /// gives every rank rank 0's weights and position, and writes config.json.
    /// </summary>
    public void Restore()
    {
        bool resumed = false;
        if (_run.Resumed is { } header)
        {
            string path = _run.Folder.Checkpoint;
            if (!Trainer.ComputesTheSame(header.Options, _options))
                throw new ConicException($"{path}: was made with different options; resume with the same options (see {Path.GetFileName(_run.Folder.Config)}) or use a new --run folder");
            if (header.ImageHeight > 0 && (header.ImageHeight, header.ImageWidth) != (_train.Height, _train.Width))
                throw new ConicException($"{path}: was trained on {header.ImageHeight}x{header.ImageWidth} images, the data now gives {_train.Height}x{_train.Width}; " +
                                         "resume with the run's image size");
            _state.Load(_run);
            resumed = true;
            (_startEpoch, _step, _spentSeconds, _budgetSeconds) = (header.CompletedEpochs, header.Step, header.TrainingSeconds, header.TrainingBudgetSeconds);
            _log.WriteLine($"resuming {path} after epoch {_startEpoch}");
        }
        if (_processes.IsDistributed)
        {
            var position = _processes.FromMain([resumed ? 1 : 0, _startEpoch, _step, _spentSeconds, _budgetSeconds]);
            (resumed, _startEpoch, _step, _spentSeconds, _budgetSeconds) = (position[0] == 1, (int)position[1], (long)position[2], position[3], position[4]);
            _state.ShareFromMain(resumed);
        }
        // Named as the flags are, so that any run's config.json is a --config file.
        _run.WriteConfig(ConfigFile.ToJson(_options));
        _badImages = _run.Writes ? ListBadImages(0) : 0;
    }

    /// <summary>The schedule: over the epochs, or over the training time a time budget leaves (fixed at a run's start, kept across resumes).</summary>
    public void Plan(RunBudget budget)
    {
        long warmupSteps = (long)(_options.WarmupEpochs * _stepsPerEpoch);
        if (Budgeted && _budgetSeconds <= 0)
        {
            // Rank 0 times evaluation, which it will run alone, while the other ranks wait without taking a core.
            double planned = _processes.IsMain ? budget.TrainingSeconds(_options.TimeBudgetMinutes, _model, _log) : 0;
            _processes.WaitQuietly();
            _budgetSeconds = _processes.FromMain(planned);
        }
        _schedule = Budgeted
            ? new TimeBudgetSchedule(_options.ScaledLearningRate, warmupSteps, _budgetSeconds)
            : new StepSchedule(_options.ScaledLearningRate, warmupSteps, (long)_options.Epochs * _stepsPerEpoch);
    }

    /// <summary>
    /// Trains epoch after epoch (a time-budget run until its time is spent, stopping mid-epoch at the deadline),
    /// checkpointing each; returns the model in its evaluation arithmetic. Cancelling drops the epoch under way.
    /// </summary>
    public PretrainedModel Train(Func<PretrainedModel, double>? monitor, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        using var tensorBoard = _run.Writes ? new TensorBoardWriter(_run.Folder.TensorBoard) : null;
        var progressBar = new ProgressBar(_log, Budgeted ? null : _options.Epochs, _stepsPerEpoch);
        _trainingClock.Start();
        double communicationAtStart = _processes.CommunicationSeconds;
        bool budgetSpent = Budgeted && _schedule.IsOver(_step, _spentSeconds);
        for (int epoch = _startEpoch + 1; Budgeted ? !budgetSpent : epoch <= _options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            var sums = TrainEpoch(epoch, clock, progressBar, progress, cancellation);
            if (sums.Steps == 0)
            {
                // The budget ran out before this epoch's first step (a step slower than the last epoch's): the last
                // checkpoint holds these weights; record its budget as spent, so a resumed run trains no further.
                _state.Save(_run, _model.Header(epoch - 1, _step, Math.Max(Elapsed(), _budgetSeconds), _budgetSeconds));
                break;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            // Less time left than one more step takes counts as spent: the next epoch would end before its first step.
            budgetSpent = Budgeted && _schedule.IsOver(_step, _processes.FromMain(Elapsed() + seconds / Math.Max(1, sums.Steps)));
            bool lastEpoch = Budgeted ? budgetSpent : epoch == _options.Epochs;
            bool monitorNow = monitor != null && _options.MonitorEvery > 0 && (epoch % _options.MonitorEvery == 0 || lastEpoch) && _processes.IsMain;
            sums.AverageOver(_processes);
            double? communicationShare = _processes.IsDistributed ? (_processes.CommunicationSeconds - communicationAtStart) / Math.Max(seconds, 1e-9) : null;
            communicationAtStart = _processes.CommunicationSeconds;
            var metrics = new EpochMetrics(epoch, _step, sums.LastRate, sums.MeanLoss, sums.MeanTerms(), sums.Steps * _options.BatchSize / Math.Max(seconds, 1e-9),
                                           seconds, monitorNow ? monitor!(_model) : null, Elapsed() / 60, communicationShare);
            EndEpoch(metrics, tensorBoard, budgetSpent);
            var remaining = Budgeted ? TimeLeft(seconds, sums.Steps, epoch) : progressBar.Remaining(epoch, clock.Elapsed.TotalSeconds);
            progressBar.EndEpoch(metrics, remaining);
            progress?.Report(new TrainingProgress(epoch, sums.Steps, _stepsPerEpoch, _step, metrics.Loss, metrics.ImagesPerSecond, remaining, metrics));
        }
        if (Budgeted) _log.WriteLine($"time budget: trained {_step} steps ({(double)_step / _stepsPerEpoch:F1} epochs) in {Elapsed() / 60:F1} min");
        _optimizer.Dispose();
        // Evaluation and export see the float32 network.
        _model.UseEvaluationArithmetic();
        return _model;
    }

    /// <summary>One epoch's steps (a time-budget run stops at its deadline); the sums of their losses.</summary>
    LossSums TrainEpoch(int epoch, Stopwatch clock, ProgressBar progressBar, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        var sums = new LossSums();
        Method.train();
        // Two generators: the input pipeline may run on another thread while the method draws its own numbers.
        using var generator = new Generator((ulong)Seeds.Derive(_options.Seed, epoch, purpose: 2));
        using var augmentationGenerator = new Generator((ulong)Seeds.Derive(_options.Seed, epoch, purpose: 3));
        // This rank's share of the global batch, augmented with the random numbers of those rows of the global batch.
        PreparedBatch Prepare(int[] batch)
        {
            var share = batch[_shareStart..(_shareStart + _shareSize)];
            return PreparedBatch.Make(_model.Augmenter, _train, share.Select(i => _sampler.DatasetIndices[i]).ToArray(), share, _device, augmentationGenerator,
                                      Method.NeedsLabels, new BatchShare(batch.Length, _shareStart));
        }
        // A time-budget run's window slides with the time spent, as its learning rate does.
        var batches = _sampler.EpochBatches(epoch, _options.BatchSize, Budgeted ? _schedule.Progress(_step, SharedElapsed()) : null);
        foreach (var prepared in _options.Prefetch ? PreparedBatch.Prefetch(batches, Prepare) : batches.Select(Prepare))
        {
            using var scope = NewDisposeScope();
            using var input = prepared;
            if (CancellationRequested(cancellation))
            {
                _log.WriteLine($"cancelled in epoch {epoch} after {sums.Steps} of its steps: the run folder holds epoch {epoch - 1}; resume to continue");
                _optimizer.Dispose();
                _model.Dispose();
                throw new OperationCanceledException(cancellation);
            }
            double elapsed = Budgeted ? SharedElapsed() : Elapsed();
            if (_schedule.IsOver(_step, elapsed)) break;
            double rate = _schedule.RateAt(_step, elapsed);
            var loss = Trainer.Step(Method, _optimizer, new TrainingBatch(prepared.Views, prepared.Indices, _schedule.Progress(_step, elapsed), generator, Labels: prepared.Labels),
                                    rate, _averager);
            if (!sums.Add(loss, rate)) throw new ConicException(Trainer.DiagnoseNonFiniteLoss(_model, _options, loss, _step, rate));
            _step++;
            double imagesPerSecond = sums.Steps * _options.BatchSize / clock.Elapsed.TotalSeconds;
            var left = TimeLeft(clock.Elapsed.TotalSeconds, sums.Steps, epoch);
            progressBar.Update(epoch, sums.Steps, sums.MeanLoss, imagesPerSecond, left);
            progress?.Report(new TrainingProgress(epoch, sums.Steps, _stepsPerEpoch, _step, sums.MeanLoss, imagesPerSecond, left));
        }
        return sums;
    }

    /// <summary>Time left: the budget's, or this epoch's pace over the steps left in the planned epochs.</summary>
    TimeSpan TimeLeft(double epochSeconds, int stepsDone, int epoch)
    {
        if (Budgeted) return TimeSpan.FromSeconds(Math.Max(0, _budgetSeconds - Elapsed()));
        long remainingSteps = (long)(_options.Epochs - epoch + 1) * _stepsPerEpoch;
        return TimeSpan.FromSeconds(epochSeconds / Math.Max(1, stepsDone) * (remainingSteps - stepsDone));
    }

    /// <summary>Records a finished epoch: metrics, unreadable images, TensorBoard, and the checkpoint (every rank takes part).</summary>
    void EndEpoch(EpochMetrics metrics, TensorBoardWriter? tensorBoard, bool budgetSpent)
    {
        _run.AppendMetrics(metrics);
        if (_run.Writes) _badImages = ListBadImages(_badImages);
        tensorBoard?.Add(metrics);
        double trainedSeconds = budgetSpent ? Math.Max(Elapsed(), _budgetSeconds) : Elapsed();
        // The replicas take identical steps, but an all-reduce need not round alike on every rank: rank 0's state,
        // which the checkpoint holds, is shared again once an epoch, so no drift outlives an epoch.
        if (_processes.IsDistributed) _state.ShareFromMain(resumed: false);
        _state.Save(_run, _model.Header(metrics.Epoch, _step, trainedSeconds, _budgetSeconds));
    }

    /// <summary>Whether to stop before the next step: rank 0's token decides for all ranks (one broadcast per step, only for a cancellable token).</summary>
    bool CancellationRequested(CancellationToken cancellation) =>
        cancellation.CanBeCanceled && (_processes.IsDistributed ? _processes.FromMain(cancellation.IsCancellationRequested ? 1.0 : 0.0) == 1
                                                                : cancellation.IsCancellationRequested);

    /// <summary>
    /// Writes bad-images.txt (file, tab, problem) when more files of the data were found unreadable than the
    /// <paramref name="listed"/> ones, says so, and returns how many are listed now.
    /// </summary>
    int ListBadImages(int listed)
    {
        var bad = _train.BadFiles.OrderBy(b => b.Key, StringComparer.Ordinal).ToArray();
        if (bad.Length == listed) return listed;
        AtomicFile.WriteText(_run.Folder.BadImages, string.Concat(bad.Select(b => $"{b.Key}\t{b.Value}\n")));
        _log.WriteLine($"warning: {bad.Length} unreadable image{(bad.Length == 1 ? "" : "s")} in {_train.Source}" +
                       (listed > 0 ? $" ({bad.Length - listed} found while decoding)" : "") + $", listed in {_run.Folder.BadImages}");
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
        /// <summary>The learning rate of the last step added.</summary>
        public double LastRate { get; private set; }

        /// <summary>Adds a finite loss taken at <paramref name="rate"/>; false (nothing added) when it is not finite.</summary>
        public bool Add(MethodLoss loss, double rate)
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
            LastRate = rate;
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
}
