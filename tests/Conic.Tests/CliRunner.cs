using System.Diagnostics;

namespace Conic.Tests;

/// <summary>Runs the real `conic` command (Conic.Cli.dll next to the tests) in a child process.</summary>
static class CliRunner
{
    public static string CliPath => Path.Combine(AppContext.BaseDirectory, "Conic.Cli.dll");

    public static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(CliPath);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        return Process.Start(info)!;
    }

    public static (int ExitCode, string StdOut, string StdErr) Run(params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
