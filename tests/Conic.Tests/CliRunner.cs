using System.Diagnostics;

namespace Conic.Tests;

/// <summary>Runs the real `conic` command (Conic.Cli.dll next to the tests) in a child process.</summary>
static class CliRunner
{
    public static string CliPath => Path.Combine(AppContext.BaseDirectory, "Conic.Cli.dll");

    public static Process Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    public static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(CliPath);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        return Process.Start(info)!;
    }

    public static (int ExitCode, string StdOut, string StdErr) Run(params string[] args) => Run(new Dictionary<string, string>(), args);

    public static (int ExitCode, string StdOut, string StdErr) Run(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(environment, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// Pretrains a one-epoch run without evaluation in <paramref name="data"/>/run, for tests of the commands that read a
    /// finished run (embed, export); returns the run folder.
    /// </summary>
    public static string PretrainOneEpoch(string data, int instances, int batchSize, int width, int threads)
    {
        string run = Path.Combine(data, "run");
        var (exitCode, _, stderr) = Run("pretrain", "--data", data, "--run", run, "--instances", instances.ToString(), "--batch-size", batchSize.ToString(),
                                        "--epochs", "1", "--width", width.ToString(), "--threads", threads.ToString(), "--no-eval", "--monitor-every", "0");
        Assert.True(exitCode == 0, stderr);
        return run;
    }

    /// <summary>The arguments of a small, fast fine-tune (width-4 backbone for --run none, batch 8, one thread).</summary>
    public static string[] Finetune(string task, string data, string run, string output, int epochs) =>
        ["finetune", "--task", task, "--run", run, "--data", data, "--out", output, "--epochs", epochs.ToString(), "--batch-size", "8", "--threads", "1", "--width", "4"];
}
