using System.Diagnostics;
using Conic.Distributed;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Bench;

/// <summary>
/// A ConIC training step with a very large instance classifier (e.g. 1,000,000 rows), whole in one process or split by
/// rows over MPI ranks (run under mpirun with --distributed): step time, its communication, and resident memory per
/// rank. Random 28×28 images (the step's cost does not depend on their content); float32.
/// </summary>
static class ShardedStepBenchmark
{
    /// <param name="threads">Threads per process; 0: the cores divided among the ranks on this machine.</param>
    public static void Run(int instances, int batch, int steps, bool distributed, int threads, TextWriter output)
    {
        using var processes = distributed ? MpiProcessGroup.Join(TimeSpan.FromMinutes(10)) : ProcessGroup.Single;
        threads = threads > 0 ? threads : MpiProcessGroup.ThreadsPerRank;
        TorchRuntime.Initialize("cpu", threads);
        long baseline = ProcessMemory.ResidentBytes() ?? 0;
        manual_seed(0);
        var method = new ConicMethod(new ResNet(new BackboneOptions { InputChannels = 1, Width = 16 }), instances, new ConicOptions(), processes);
        var groups = method.ParameterGroups(5e-4);
        var optimizer = new MomentumSgd(groups, 0.9);
        var averager = Trainer.GradientAveragerFor(method, groups, processes);
        long rows = method.named_parameters().Single(p => p.name == "classifier").parameter.shape[0];
        // Building the method draws the whole classifier once (so that every rank starts from one process's weights):
        // the steps' peak is measured from here.
        long built = ProcessMemory.ResidentBytes() ?? 0;
        ProcessMemory.ResetPeak();
        int share = batch / processes.Size;
        using var generator = new Generator(1);
        var times = new List<double>();
        double communication = 0;
        for (int step = 0; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            // Fresh images each step (denormals aside, a repeated batch is memorised and gets faster).
            var views = new[] { randn(share, 1, 28, 28), randn(share, 1, 28, 28) };
            var indices = randint(0, instances, [share], generator: generator);
            double before = processes.CommunicationSeconds;
            var clock = Stopwatch.StartNew();
            Trainer.Step(method, optimizer, new TrainingBatch(views, indices, 0.5, generator), 0.01, averager);
            processes.Barrier();
            // The first step allocates the classifier's gradient and momentum: left out of the times.
            if (step > 0)
            {
                times.Add(clock.Elapsed.TotalSeconds);
                communication += processes.CommunicationSeconds - before;
            }
        }
        long peak = ProcessMemory.PeakResidentBytes() ?? 0;
        double mean = times.Average();
        string line = $"| {instances:N0} | {processes.Size} × {threads} | rank {processes.Rank} | {rows:N0} | {mean * 1000:F0} ms | {communication / times.Sum():P0} | " +
                      $"{(built - baseline) / 1e9:F2} GB | {(peak - baseline) / 1e9:F2} GB |";
        if (processes.Rank == 0)
        {
            output.WriteLine($"sharded step: ConIC, width-16 ResNet-18, 28x28, global batch {batch}, mean of {steps} steps after the first; memory above libtorch's start-up");
            output.WriteLine("| instances | ranks × threads | rank | classifier rows held | step | in collectives | resident after building | peak while stepping |");
            output.WriteLine("|---|---|---|---|---|---|---|---|");
        }
        // Rank order in the output: each rank prints after the previous one.
        for (int rank = 0; rank < processes.Size; rank++)
        {
            if (rank == processes.Rank) { output.WriteLine(line); output.Flush(); }
            processes.Barrier();
        }
    }
}
