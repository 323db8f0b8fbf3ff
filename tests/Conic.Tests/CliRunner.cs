using System.Diagnostics;

namespace Conic.Tests;

/// <summary>Runs the real `conic` command (Conic.Cli.dll next to the tests) in a child process.</summary>
static class CliRunner
{
    public static string CliPath => Path.Combine(AppContext.BaseDirectory, "Conic.Cli.dll");

    public static CliProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    public static CliProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet");
        info.ArgumentList.Add(CliPath);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        return new CliProcess(info);
    }

    public static (int ExitCode, string StdOut, string StdErr) Run(params string[] args) => Run(new Dictionary<string, string>(), args);

    public static (int ExitCode, string StdOut, string StdErr) Run(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(environment, args);
        process.WaitForExit();
        return (process.ExitCode, process.StdOut, process.StdErr);
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
        ["finetune", "--task", task, "--run", run, "--data", data, "--out", output, "--epochs", epochs.ToString(), "--batch-size", "8", "--threads", "1", "--width", "4", "--precision", "fp32"];
}

/// <summary>
/// A running command whose stdout and stderr are read as they come, so that a child writing much (a warning per
/// convolution) never blocks on a full pipe while a test waits for it.
/// </summary>
sealed class CliProcess : IDisposable
{
    readonly Process _process;
    readonly System.Text.StringBuilder _stdout = new(), _stderr = new();

    public CliProcess(ProcessStartInfo info)
    {
        info.RedirectStandardOutput = info.RedirectStandardError = true;
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, line) => Append(_stdout, line.Data);
        _process.ErrorDataReceived += (_, line) => Append(_stderr, line.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    static void Append(System.Text.StringBuilder text, string? line)
    {
        if (line == null) return;
        lock (text) text.Append(line).Append('\n');
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    /// <summary>What the command wrote so far (all of it once it has exited and <see cref="WaitForExit()"/> returned).</summary>
    public string StdOut { get { lock (_stdout) return _stdout.ToString(); } }
    public string StdErr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Waits for the exit and for the last of the output.</summary>
    public void WaitForExit() => _process.WaitForExit();

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit();
        return true;
    }

    /// <summary>Waits until stderr holds <paramref name="text"/>; false when the command exited or the time ran out first.</summary>
    public bool WaitForStdErr(string text, TimeSpan timeout)
    {
        var started = DateTime.UtcNow;
        while (!StdErr.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || DateTime.UtcNow - started > timeout) return StdErr.Contains(text, StringComparison.Ordinal);
            Thread.Sleep(10);
        }
        return true;
    }

    public void Kill(bool entireProcessTree = false) => _process.Kill(entireProcessTree);

    public void Dispose() => _process.Dispose();
}
