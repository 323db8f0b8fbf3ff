using Conic.Data;
using Conic.Training;
using Conic.Workflows;

namespace Conic.Tests;

/// <summary>The C# API's asynchronous run: typed progress, and cancellation that leaves a run resumable to the same weights.</summary>
public class AsyncRunTests
{
    /// <summary>Reports on the training thread as they happen (<see cref="Progress{T}"/> would post them later, elsewhere).</summary>
    sealed class Immediately(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public async Task ACancelledRunReportsItsProgressAndResumesToTheWeightsOfAnUninterruptedRun()
    {
        string data = SyntheticData.WriteIdx(trainCount: 96, testCount: 16);
        var splits = DatasetLoader.Load(data);
        PretrainOptions Options(string name) => new()
        {
            DataPath = data, RunDirectory = Path.Combine(data, name), Instances = 64, BatchSize = 16, Epochs = 4, WarmupEpochs = 1, Threads = 1,
            MonitorEvery = 0, Backbone = new Models.BackboneOptions { Width = 4 }, Kernels = SuiteArithmetic.Kernels,
        };
        using (var uninterrupted = await PretrainRun.ExecuteAsync(Options("uninterrupted"), splits, evaluate: false, report: false)) { }

        // Cancelled in the third epoch, after two of its four steps: the run folder holds epoch 2.
        var reports = new List<TrainingProgress>();
        using var cancel = new CancellationTokenSource();
        var progress = new Immediately(p =>
        {
            reports.Add(p);
            if (p is { Epoch: 3, StepInEpoch: 2 }) cancel.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            PretrainRun.ExecuteAsync(Options("cancelled"), splits, progress, evaluate: false, report: false, cancellation: cancel.Token));
        Assert.Equal(2, Checkpoint.ReadHeader(new Runtime.RunFolder(Path.Combine(data, "cancelled")).Checkpoint).CompletedEpochs);
        Assert.Equal(Enumerable.Range(1, 10).Select(s => (long)s), reports.Where(p => p.Metrics == null).Select(p => p.Step));
        Assert.Equal([1, 2], reports.Where(p => p.Metrics != null).Select(p => p.Metrics!.Epoch));
        Assert.All(reports, p => Assert.True(p.StepsPerEpoch == 4 && double.IsFinite(p.Loss) && p.ImagesPerSecond > 0, p.ToString()));

        using var resumed = await PretrainRun.ExecuteAsync(Options("cancelled"), splits, resume: true, evaluate: false, report: false);
        using var expected = PretrainedModel.Load(Path.Combine(data, "uninterrupted"));
        var expectedState = expected.Method.state_dict();
        foreach (var (name, value) in resumed.Model.Method.state_dict())
            Assert.True(value.eq(expectedState[name]).all().item<bool>(), $"{name} differs after a cancelled run resumed");
    }
}
