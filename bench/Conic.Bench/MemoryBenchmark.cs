using System.Diagnostics;
using Conic.Data;
using Conic.Runtime;
using Conic.Training;

namespace Conic.Bench;

/// <summary>Resident memory over a long pretraining run (checkpoints included): it must stay flat, or tensors leak.</summary>
static class MemoryBenchmark
{
    public static void Run(string? dataPath, int steps, int batch, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 0);
        var train = DatasetLoader.Load(dataPath).Train;
        const int instances = 2048;
        int epochs = (int)Math.Ceiling((double)steps * batch / instances);
        string run = Path.Combine(Path.GetTempPath(), $"conic-memory-{Environment.ProcessId}");
        var samples = new List<(double Seconds, long Bytes)>();
        var clock = Stopwatch.StartNew();
        using var sampler = new Timer(_ =>
        {
            lock (samples) samples.Add((clock.Elapsed.TotalSeconds, ProcessMemory.ResidentBytes() ?? 0));
        }, null, 0, 2000);
        try
        {
            var options = new PretrainOptions { Instances = instances, BatchSize = batch, Epochs = epochs, RunDirectory = run };
            using (Trainer.Pretrain(options, train, TextWriter.Null)) { }
        }
        finally
        {
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
        }
        double total = clock.Elapsed.TotalSeconds;
        output.WriteLine($"memory: {epochs} epochs x {instances / batch} steps (batch {batch}) = {epochs * (instances / batch)} steps in {total:F0} s; resident memory:");
        output.WriteLine("| progress | resident |");
        output.WriteLine("|---|---|");
        lock (samples)
        {
            foreach (double fraction in new[] { 0.1, 0.25, 0.5, 0.75, 1.0 })
            {
                var sample = samples.Last(s => s.Seconds <= fraction * total + 1e-9);
                output.WriteLine($"| {fraction:P0} ({sample.Seconds:F0} s) | {sample.Bytes / 1048576.0:F0} MiB |");
            }
        }
    }
}
