using System.Diagnostics;
using Conic.Data;
using Conic.Evaluation;
using Conic.Export;
using Conic.Training;

namespace Conic.Tests;

/// <summary>A fact that needs Debian's python3-torch and python3-torchvision; skipped, with the reason shown, where they are absent (outside CI).</summary>
public sealed class PyTorchFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";

    public PyTorchFactAttribute()
    {
        Skip = ToolRequirement.SkipReason(
            !File.Exists(Python) ? $"{Python} is absent"
            : ExternalProgram.Run(Python, "-c", "import torch, torchvision").ExitCode != 0 ? "python3 cannot import torch and torchvision (apt-get install python3-torchvision)"
            : null);
    }
}

/// <summary>Runs a program other than conic (python3, chromium) and collects its output.</summary>
static class ExternalProgram
{
    public static (int ExitCode, string StdOut, string StdErr) Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), $"{program} did not finish in two minutes");
        return (process.ExitCode, stdout, stderr.Result);
    }
}

public class PyTorchExportTests
{
    [PyTorchFact]
    public void TorchvisionResNetLoadsBothExportsStrictlyAndGivesTheSameFeatures()
    {
        string data = SyntheticData.WriteIdx(trainCount: 48, testCount: 8);
        // torchvision's ResNet-18 has the full width.
        string run = CliRunner.PretrainOneEpoch(data, instances: 32, batchSize: 16, width: 64, threads: 2);
        var (exitCode, _, stderr) = CliRunner.Run("export", "--run", run, "--format", "safetensors");
        Assert.True(exitCode == 0, stderr);
        var pytorch = CliRunner.Run("export", "--run", run, "--format", "pytorch");
        Assert.True(pytorch.ExitCode == 0, pytorch.StdErr);

        using var model = PretrainedModel.Load(run);
        var test = DatasetLoader.Load(data).Test!;
        using var inputs = model.Normalization.FromPixels(test.Gather(Enumerable.Range(0, test.Count).ToArray()));
        using var features = FeatureExtractor.Extract(model, test);
        EmbeddingWriter.WriteNpy(Path.Combine(run, "inputs.npy"), inputs);
        EmbeddingWriter.WriteNpy(Path.Combine(run, "features.npy"), features);

        string script = Path.Combine(AppContext.BaseDirectory, "python", "torchvision_loads.py");
        foreach (var state in new[] { Array.Empty<string>(), new[] { Path.Combine(run, "encoder.pt") } })
        {
            var arguments = new[] { script, Path.Combine(run, "encoder.safetensors") }.Concat(state)
                .Concat(new[] { Path.Combine(run, "inputs.npy"), Path.Combine(run, "features.npy") }).ToArray();
            var (pythonExit, output, errors) = ExternalProgram.Run(PyTorchFactAttribute.Python, arguments);
            Assert.True(pythonExit == 0, errors);
            double difference = double.Parse(output.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(difference <= 1e-4, output);
        }
    }
}
