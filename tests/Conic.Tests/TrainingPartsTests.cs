using System.Text;
using Conic.Methods;
using Conic.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class TrainingPartsTests
{
    [Fact]
    public void ScheduleWarmsUpLinearlyThenDecaysToZero()
    {
        var schedule = new StepSchedule(BaseRate: 1.0, WarmupSteps: 10, TotalSteps: 110);
        Assert.Equal(0.1, schedule.RateAt(0, 0), 9);
        Assert.Equal(1.0, schedule.RateAt(9, 0), 9);
        Assert.Equal(1.0, schedule.RateAt(10, 0), 9);
        Assert.Equal(0.5, schedule.RateAt(60, 0), 9);
        Assert.Equal(0.0, schedule.RateAt(110, 0), 9);
        Assert.False(schedule.IsOver(109, 1e9));
        Assert.True(schedule.IsOver(110, 0));
    }

    [Fact]
    public void TimeBudgetScheduleEndsAtTheBudgetWhateverTheStepSpeed()
    {
        var schedule = new TimeBudgetSchedule(BaseRate: 1.0, WarmupSteps: 4, TrainingSeconds: 100);
        Assert.Equal(0.25, schedule.RateAt(0, 0), 9);
        Assert.Equal(0.5, schedule.RateAt(1000, 50), 9);
        Assert.Equal(0.5, schedule.Progress(3, 50), 9);
        // Slow steps or fast steps: the rate depends on the time spent, and is 0 when the budget is spent.
        Assert.Equal(schedule.RateAt(10, 80), schedule.RateAt(10_000, 80), 12);
        Assert.False(schedule.IsOver(10, 99.9));
        Assert.True(schedule.IsOver(10, 100));
        Assert.Equal(0.0, schedule.RateAt(10, 100), 9);
        Assert.Equal(1.0, schedule.Progress(10, 150), 9);
    }

    [Theory]
    [InlineData("90s", 1.5)]
    [InlineData("20m", 20)]
    [InlineData("20min", 20)]
    [InlineData("1h30m", 90)]
    [InlineData("1.5h", 90)]
    [InlineData("45", 45)]
    [InlineData("none", 0)]
    public void DurationsReadAsMinutes(string text, double minutes)
    {
        Assert.Equal(minutes, Configuration.SettingText.Minutes(text), 9);
        if (minutes > 0) Assert.Equal(minutes, Configuration.SettingText.Minutes(Configuration.SettingText.Duration(minutes)), 9);
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("-5m")]
    [InlineData("")]
    public void ABadDurationIsAOneLineErrorNamingTheFlag(string text)
    {
        var error = Assert.Throws<ConicException>(() => new PretrainOptions().Set("--time-budget", text));
        Assert.StartsWith("--time-budget: ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void ATimeBudgetRunsWindowSlidesWithTheTimeSpent()
    {
        var sampler = new Data.InstanceSampler(datasetCount: 100, instances: 0, seed: 1, window: 20);
        int[] Window(double progress) => sampler.EpochBatches(1, 4, progress).SelectMany(b => b).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 20), Window(0));
        Assert.Equal(Enumerable.Range(40, 20), Window(0.5));
        Assert.Equal(Enumerable.Range(80, 20), Window(1));
    }

    [Fact]
    public void MomentumSgdMatchesTorchSgd()
    {
        manual_seed(0);
        var ours = new Parameter(randn(5, 3));
        var theirs = new Parameter(ours.detach().clone());
        var optimizer = new MomentumSgd(new[] { new ParameterGroup("p", new[] { ours }, 2.0, 0.01) }, momentum: 0.9);
        var reference = optim.SGD(new[] { theirs }, learningRate: 0.2, momentum: 0.9, weight_decay: 0.01);
        for (int step = 0; step < 5; step++)
        {
            var target = randn(5, 3);
            optimizer.ZeroGrad();
            ours.sub(target).pow(Kept(2)).sum().backward();
            optimizer.Step(0.1);
            reference.zero_grad();
            theirs.sub(target).pow(Kept(2)).sum().backward();
            reference.step();
        }
        Assert.True(allclose(ours, theirs, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamAndAdamWMatchTorchsWithAGroupScaleAndAChangingLearningRate(bool decoupled)
    {
        manual_seed(0);
        var ours = new Parameter(randn(5, 3));
        var theirs = new Parameter(ours.detach().clone());
        using var optimizer = new Conic.Training.Adam([new ParameterGroup("p", [ours], 2.0, 0.05)], decoupled);
        var adam = decoupled ? null : optim.Adam(new[] { theirs }, lr: 0.2, weight_decay: 0.05);
        var adamW = decoupled ? optim.AdamW(new[] { theirs }, lr: 0.2, weight_decay: 0.05) : null;
        optim.Optimizer reference = (optim.Optimizer?)adam ?? adamW!;
        void SetRate(double rate)
        {
            foreach (var group in adam?.ParamGroups ?? []) group.LearningRate = rate;
            foreach (var group in adamW?.ParamGroups ?? []) group.LearningRate = rate;
        }
        for (int step = 0; step < 5; step++)
        {
            double rate = 0.1 / (step + 1);
            var target = randn(5, 3);
            optimizer.ZeroGrad();
            ours.sub(target).pow(Kept(2)).sum().backward();
            optimizer.Step(rate);
            reference.zero_grad();
            theirs.sub(target).pow(Kept(2)).sum().backward();
            SetRate(2 * rate);
            reference.step();
        }
        TensorAssert.RelativelyClose(theirs, ours, "weights");
        Assert.Equal(5, optimizer.NamedBuffers().Single(b => b.Name == "steps").Buffer.item<long>());
    }

    [Fact]
    public void Crc32cMatchesTheStandardCheckValue()
    {
        Assert.Equal(0xE3069283u, Runtime.Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void InstanceSamplerIsSeededAndVisitsEachInstanceOncePerEpoch()
    {
        var sampler = new Data.InstanceSampler(datasetCount: 100, instances: 40, seed: 5);
        Assert.Equal(sampler.DatasetIndices, new Data.InstanceSampler(100, 40, 5).DatasetIndices);
        Assert.Equal(40, sampler.DatasetIndices.Distinct().Count());
        var epoch = sampler.EpochBatches(epoch: 1, batchSize: 8).ToList();
        Assert.Equal(5, epoch.Count);
        Assert.Equal(Enumerable.Range(0, 40), epoch.SelectMany(b => b).Order());
        Assert.NotEqual(epoch.SelectMany(b => b), sampler.EpochBatches(2, 8).SelectMany(b => b));
    }

    [Fact]
    public void InstanceWindowSlidesOverAllInstancesOnceAndKeepsEachInConsecutiveEpochs()
    {
        const int instances = 100, window = 16, epochs = 22;
        var sampler = new Data.InstanceSampler(datasetCount: 100, instances, seed: 5, window, epochs);
        var seenIn = new Dictionary<int, List<int>>();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var visited = sampler.EpochBatches(epoch, batchSize: 8).SelectMany(b => b).ToList();
            Assert.Equal(window, visited.Count);
            Assert.Equal(window, visited.Distinct().Count());
            foreach (int instance in visited) (seenIn.TryGetValue(instance, out var list) ? list : seenIn[instance] = new()).Add(epoch);
        }
        Assert.Equal(instances, seenIn.Count);
        foreach (var epochsSeen in seenIn.Values)
            Assert.Equal(Enumerable.Range(epochsSeen[0], epochsSeen.Count), epochsSeen);
        // The window covers a random subset of the images, not a block of the dataset's order (a class, in a sorted folder).
        Assert.NotEqual(Enumerable.Range(0, window), sampler.EpochBatches(1, 8).SelectMany(b => b).Select(i => sampler.DatasetIndices[i]).Order());
        Assert.Throws<ConicException>(() => new Data.InstanceSampler(100, 10, 5, window: 20, epochs));
    }

    [Fact]
    public void PrefetchedBatchesAreTheInlineBatchesInOrder()
    {
        var data = Data.DatasetLoader.Load(SyntheticData.WriteIdx(trainCount: 48, testCount: 4)).Train;
        var (mean, std) = data.ChannelStatistics();
        var augmenter = new Augmentation.BatchAugmenter(new Augmentation.AugmentationOptions(), new Models.InputNormalization(mean, std));
        var batches = new Data.InstanceSampler(data.Count, 48, seed: 1).EpochBatches(1, 16).ToList();
        List<Tensor> Views(bool prefetch)
        {
            using var generator = new Generator(7);
            Func<int[], PreparedBatch> prepare = b => PreparedBatch.Make(augmenter, data, b, b, CPU, generator);
            var views = new List<Tensor>();
            foreach (var prepared in prefetch ? PreparedBatch.Prefetch(batches, prepare) : batches.Select(prepare))
            {
                using (prepared) views.Add(cat(prepared.Views, 0).clone());
                Thread.Sleep(5); // the consumer lags, so the producer runs ahead
            }
            return views;
        }
        var inline = Views(prefetch: false);
        var prefetched = Views(prefetch: true);
        Assert.Equal(3, prefetched.Count);
        for (int i = 0; i < inline.Count; i++) Assert.True(inline[i].eq(prefetched[i]).all().item<bool>(), $"batch {i} differs");
    }

    [Fact]
    public void TimeLeftFollowsTheRecentEpochs()
    {
        var progress = new ProgressBar(TextWriter.Null, totalEpochs: 20, stepsPerEpoch: 10);
        Assert.Equal(TimeSpan.FromSeconds(100 * 19), progress.Remaining(1, 100));  // a slow first epoch
        for (int epoch = 2; epoch <= 9; epoch++) progress.Remaining(epoch, 10);
        // Five recent epochs of 10 s each: the slow one no longer counts.
        Assert.Equal(TimeSpan.FromSeconds(10 * 10), progress.Remaining(10, 10));
    }
}

public class TensorBoardTests
{
    [Fact]
    public void EventFilesAreTfRecordsOfEventsWithUnixWallTimes()
    {
        string folder = Path.Combine(Path.GetTempPath(), "conic-tb-" + Guid.NewGuid().ToString("N"));
        using (var writer = new TensorBoardWriter(folder))
            writer.Add(new EpochMetrics(1, 3_000_000_000L, 0.1, 2.5, [("classification", 2.0)], 123, 4, MonitorKnnTop1: 0.75));
        byte[] bytes = File.ReadAllBytes(Directory.GetFiles(folder).Single());
        var events = new List<Tensorboard.Event>();
        for (int at = 0; at < bytes.Length;)
        {
            ulong length = BitConverter.ToUInt64(bytes, at);
            Assert.Equal(Masked(bytes.AsSpan(at, 8)), BitConverter.ToUInt32(bytes, at + 8));
            var data = bytes.AsSpan(at + 12, (int)length);
            Assert.Equal(Masked(data), BitConverter.ToUInt32(bytes, at + 12 + (int)length));
            events.Add(Tensorboard.Event.Parser.ParseFrom(data.ToArray()));
            at += 16 + (int)length;
        }
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        double now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.All(events, e => Assert.InRange(e.WallTime, now - 60, now + 1));
        var scalars = events.Skip(1).ToDictionary(e => e.Summary.Value.Single().Tag, e => (e.Step, e.Summary.Value.Single().SimpleValue));
        Assert.Equal((3_000_000_000L, 2.5f), scalars["train/loss"]);
        Assert.Equal((3_000_000_000L, 0.75f), scalars["monitor/knn_top1"]);
        Assert.Equal(2.0f, scalars["train/classification"].SimpleValue);
        Directory.Delete(folder, recursive: true);

        // TFRecord's masked CRC, computed with TorchSharp's CRC-32C rather than Conic's own.
        static uint Masked(ReadOnlySpan<byte> data)
        {
            uint crc = TorchSharp.Utils.CRC32C.process(data.ToArray());
            return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
        }
    }

    sealed record EpochsHeader(int CompletedEpochs);

    static EpochMetrics Row(int epoch) => new(epoch, epoch, 0.1, 1.0 / epoch, [], 100, 1);

    [Fact]
    public void ATrainingRunResumesItsCheckpointAndKeepsTheMetricsRowsItHolds()
    {
        string directory = Path.Combine(TestFolder.New(), "run");
        TrainingRun<EpochsHeader> Open(bool resume) =>
            TrainingRun<EpochsHeader>.Open(directory, resume, h => $"{h.CompletedEpochs} epochs", h => h.CompletedEpochs, TextWriter.Null);
        using (var first = Open(resume: false))
        {
            Assert.Null(first.Resumed);
            first.WriteConfig("{\"lr\": 0.1}");
            for (int epoch = 1; epoch <= 3; epoch++) first.AppendMetrics(Row(epoch));
            using var weights = ones(2);
            first.SaveCheckpoint(new EpochsHeader(2), [("w", weights)]); // killed after epoch 3's row, before its checkpoint
        }
        var refused = Assert.Throws<ConicException>(() => Open(resume: false));
        Assert.Contains("holds a run already (2 epochs)", refused.Message);
        using var resumed = Open(resume: true);
        Assert.Equal(2, resumed.Resumed!.CompletedEpochs);
        Assert.Equal([1, 2], resumed.MetricsColumn("loss").Select(r => r.Epoch));
        using var target = zeros(2);
        resumed.LoadCheckpoint(new Dictionary<string, Tensor> { ["w"] = target });
        Assert.Equal([1f, 1f], target.data<float>().ToArray());
    }

    [Fact]
    public void ATrainingRunOnARankOtherThanZeroNeitherLocksNorWrites()
    {
        string directory = Path.Combine(TestFolder.New(), "run");
        using var run = TrainingRun<EpochsHeader>.Open(directory, resume: true, h => "", h => h.CompletedEpochs, TextWriter.Null, writes: false);
        Assert.False(run.Writes);
        run.WriteConfig("{\"lr\": 0.1}");
        run.AppendMetrics(Row(1));
        using var weights = ones(2);
        run.SaveCheckpoint(new EpochsHeader(1), [("w", weights)]);
        Assert.False(Directory.Exists(directory));
    }
}
