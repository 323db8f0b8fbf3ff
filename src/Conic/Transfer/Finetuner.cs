using System.Diagnostics;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using Conic.Configuration;
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
/// random horizontal flips and momentum SGD on pretraining's schedules (one-epoch warm-up, then cosine over the epochs or
/// over a time budget); validates and checkpoints every epoch in a <see cref="TrainingRun{THeader}"/> (a killed run resumes
/// exactly), lets the task write eval.json and its pictures, and writes report.html.
/// </summary>
public static class Finetuner
{
    internal const string ModelPrefix = "model.", OptimizerPrefix = "optimizer.";

    /// <summary>Fine-tunes in <paramref name="runDirectory"/> (with <paramref name="resume"/>, continuing its checkpoint) and evaluates; returns the lines that tell the user the result.</summary>
    public static IReadOnlyList<string> Run(FinetuneOptions options, string runDirectory, bool resume, TextWriter log)
    {
        if (options.Problem() is string problem) throw new ConicException(problem);
        using var run = TrainingRun<FinetuneCheckpointHeader>.Open(runDirectory, resume, header => $"fine-tuned for {header.CompletedEpochs} epochs",
                                                                   header => header.CompletedEpochs, log);
        // A resumed run keeps its plan; only the epochs (to add some) and where it runs may change.
        if (run.Resumed is { } header) options = header.Options with { Epochs = options.Epochs, Device = options.Device, Threads = options.Threads };
        using var finetuning = Finetuning.Prepare(options, run, log);
        finetuning.Train();
        return finetuning.Finish();
    }

    /// <summary>One fine-tune run, where it stands: its network, task, optimiser and schedule.</summary>
    sealed class Finetuning : IDisposable
    {
        readonly FinetuneOptions _options;
        readonly TrainingRun<FinetuneCheckpointHeader> _run;
        readonly TextWriter _log;
        readonly Device _device;
        readonly PretrainedModel? _pretrained;
        readonly FinetuneTask _task;
        readonly InputNormalization _normalization;
        readonly Backbone _backbone;
        readonly TaskNetwork _network;
        readonly ArithmeticChoice _arithmetic;
        readonly MomentumSgd _optimizer;
        readonly Dictionary<string, Tensor> _state;
        readonly TrainingSchedule _schedule;
        readonly int _stepsPerEpoch;
        long _step;
        double _trainingSeconds;

        Finetuning(FinetuneOptions options, TrainingRun<FinetuneCheckpointHeader> run, TextWriter log, Device device, PretrainedModel? pretrained, FinetuneTask task)
        {
            (_options, _run, _log, _device, _pretrained, _task) = (options, run, log, device, pretrained, task);
            var header = run.Resumed;
            _normalization = header != null ? new InputNormalization(header.ChannelMean, header.ChannelStd) : pretrained?.Normalization ?? task.Statistics();
            manual_seed(options.Seed);
            _backbone = pretrained?.Backbone ?? Backbone.Create((header?.Backbone ?? options.Backbone) with { InputChannels = task.Channels });
            if (header == null && options.InitPath != null) InitialWeights.Load(options.InitPath, _backbone);
            _network = task.CreateNetwork(_backbone);
            _network.to(device);
            _arithmetic = device.type == TorchSharp.DeviceType.CPU
                ? ArithmeticCheck.Choose(_backbone, task.Side, task.Side, options.BatchSize, options.Precision, ConvolutionKernels.Auto, TorchRuntime.CpuHasBFloat16())
                : ArithmeticChoice.Unchecked(options.Precision == Precision.Auto ? Precision.Float32 : options.Precision);
            if (options.FreezeBackbone)
                foreach (var parameter in _backbone.parameters()) parameter.requires_grad = false;
            var trained = options.FreezeBackbone ? _network.HeadParameters.ToList() : _network.parameters().ToList();
            _optimizer = new MomentumSgd([new ParameterGroup("all", trained, 1, options.WeightDecay)], options.Momentum);
            _state = _network.state_dict().Select(kv => (ModelPrefix + kv.Key, kv.Value))
                .Concat(_optimizer.NamedBuffers().Select(b => (OptimizerPrefix + b.Name, b.Buffer))).ToDictionary();
            _stepsPerEpoch = (task.TrainCount + options.BatchSize - 1) / options.BatchSize;
            _schedule = options.TimeBudgetMinutes > 0
                ? new TimeBudgetSchedule(options.LearningRate, _stepsPerEpoch, options.TimeBudgetMinutes * 60)
                : new StepSchedule(options.LearningRate, _stepsPerEpoch, (long)_stepsPerEpoch * options.Epochs);
            (_step, _trainingSeconds) = (header?.Step ?? 0, header?.TrainingSeconds ?? 0);
        }

        bool Budgeted => _options.TimeBudgetMinutes > 0;

        /// <summary>The network for <paramref name="options"/> on its task's data, restored from the run's checkpoint when it continues one.</summary>
        public static Finetuning Prepare(FinetuneOptions options, TrainingRun<FinetuneCheckpointHeader> run, TextWriter log)
        {
            var header = run.Resumed;
            var device = TorchRuntime.Initialize(options.Device, options.Threads);
            var pretrained = header == null && options.InitRun != null ? PretrainedModel.Load(options.InitRun, options.Device, options.Threads) : null;
            int? channels = header?.Backbone.InputChannels ?? pretrained?.Backbone.Options.InputChannels;
            var task = options.Task.Load(options, channels, header?.Side ?? options.ImageSize);
            if (header != null && !header.ClassNames.SequenceEqual(task.ClassNames))
                throw new ConicException($"{options.DataPath}: its classes differ from those the checkpoint in {run.Folder.Directory} was trained on");
            var finetuning = new Finetuning(options, run, log, device, pretrained, task);
            log.WriteLine($"arithmetic: {finetuning._arithmetic.Describe()}");
            if (header != null)
            {
                run.LoadCheckpoint(finetuning._state);
                log.WriteLine($"resuming {run.Folder.Checkpoint} after epoch {header.CompletedEpochs}");
            }
            else run.WriteConfig(System.Text.Json.JsonSerializer.Serialize(options, RunJson.Options));
            log.WriteLine($"{task.Name}: {task.TrainCount} training images of {task.Side} px, {task.ClassNames.Count} classes; " +
                          $"backbone {options.StartingPoint()}{(options.FreezeBackbone ? " (frozen)" : "")}" +
                          (options.TimeBudgetMinutes > 0 ? $"; training for {SettingText.Duration(options.TimeBudgetMinutes)}" : ""));
            return finetuning;
        }

        /// <summary>Trains the epochs left (a time-budget run until its time is spent), validating and checkpointing each.</summary>
        public void Train()
        {
            for (int epoch = (_run.Resumed?.CompletedEpochs ?? 0) + 1; Budgeted ? !_schedule.IsOver(_step, _trainingSeconds) : epoch <= _options.Epochs; epoch++)
            {
                var clock = Stopwatch.StartNew();
                var (images, lossSum, rate) = TrainEpoch(epoch, clock);
                if (images == 0) break;
                double seconds = clock.Elapsed.TotalSeconds, meanLoss = lossSum / images;
                _trainingSeconds += seconds;
                if (!double.IsFinite(meanLoss)) throw new ConicException($"{_run.Folder.Directory}: the loss became {meanLoss} in epoch {epoch}; lower --lr");
                _arithmetic.Evaluation.Apply([_backbone]);
                var scores = _task.Validate(_network, _normalization, _device, _options.BatchSize);
                _run.AppendMetrics(new EpochMetrics(epoch, _step, rate, meanLoss, scores.Select(s => ("val_" + s.Name, s.Value)).ToArray(),
                                                    images / seconds, seconds, ElapsedMinutes: _trainingSeconds / 60));
                _run.SaveCheckpoint(new FinetuneCheckpointHeader(epoch, _step, _options, _backbone.Options, _task.ClassNames, _normalization.Mean,
                                                                 _normalization.Std, _task.Side, _trainingSeconds),
                                    _state.Select(kv => (kv.Key, kv.Value)));
                _log.WriteLine($"epoch {epoch}{(Budgeted ? "" : $"/{_options.Epochs}")} loss {meanLoss:F4} lr {rate:G3} {images / seconds:F0} img/s {seconds:F1}s  " +
                               string.Join(" ", scores.Select(s => $"val {s.Name} {100 * s.Value:F2} %")));
            }
        }

        /// <summary>One pass over the shuffled training images (a time-budget run stops at its deadline): images trained, their summed loss, the last rate.</summary>
        (int Images, double LossSum, double Rate) TrainEpoch(int epoch, Stopwatch clock)
        {
            _arithmetic.Training.Apply([_backbone]);
            _network.train();
            if (_options.FreezeBackbone) _backbone.eval();
            var order = Enumerable.Range(0, _task.TrainCount).ToArray();
            new Random(Seeds.Derive(_options.Seed, epoch, 0)).Shuffle(order);
            var flips = new Random(Seeds.Derive(_options.Seed, epoch, 1));
            int images = 0;
            double lossSum = 0, rate = 0;
            for (int start = 0; start < order.Length; start += _options.BatchSize, _step++)
            {
                double elapsed = _trainingSeconds + clock.Elapsed.TotalSeconds;
                if (_schedule.IsOver(_step, elapsed)) break;
                using var scope = NewDisposeScope();
                var batch = order[start..Math.Min(order.Length, start + _options.BatchSize)];
                var flipped = batch.Select(_ => flips.Next(2) == 1).ToArray();
                rate = _schedule.RateAt(_step, elapsed);
                _optimizer.ZeroGrad();
                var loss = _task.Loss(_network, batch, flipped, _normalization, _device);
                loss.backward();
                _optimizer.Step(rate);
                lossSum += loss.item<float>() * batch.Length;
                images += batch.Length;
            }
            return (images, lossSum, rate);
        }

        /// <summary>The task's final evaluation, eval.json and pictures, and report.html; the lines that tell the user.</summary>
        public IReadOnlyList<string> Finish()
        {
            _arithmetic.Evaluation.Apply([_backbone]);
            double imagesPerSecond = _run.MetricsColumn("images_per_second").Select(c => c.Value).DefaultIfEmpty(0).Last();
            var result = _task.Finish(_network, _normalization, _device, _options.BatchSize, _run.Folder,
                                      new FinetuneSummary(_options.StartingPoint(), _options.FreezeBackbone, imagesPerSecond));
            return [.. result, $"report: {FinetuneReport.Write(_run.Folder, _options, result)}"];
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _network.Dispose();
            _task.Dispose();
            _pretrained?.Dispose();
        }
    }
}
