using System.CommandLine;
using Conic;
using Conic.Cli;
using Conic.Cli.Commands;

var root = new RootCommand("conic - self-supervised image encoders for .NET (ConIC: consistent instance classification)")
{
    PretrainCommand.Create(),
    EvalCommand.Create(),
    CompareCommand.Create(),
    ReportCommand.Create(),
    CurvesCommand.Create(),
    EmbedCommand.Create(),
    ExportCommand.Create(),
    CacheCommand.Create(),
    MakeScenesCommand.Create(),
    FinetuneCommand.Create(),
    FinetuneCommand.CreateProbe(),
    TransferCommand.Create(),
};
CommandHelp.Install(root);
if (args.Length == 0)
{
    root.Parse("--help").Invoke();
    return 1;
}

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Invocation.SynchronousCommandLineAction { ClearsParseErrors: true })
{
    Console.Error.WriteLine($"error: {ParseErrors.Describe(parsed)}");
    return 2;
}

ParentWatch.StartIfAsked();
Conic.Models.ArithmeticCheck.RestartWithIsaCapAllowed = true;
try
{
    return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Conic.Models.OneDnnIsaCapNeeded reason) when (MpiLaunch.IsaCapRequest is string request)
{
    // A rank of --processes N (every rank throws alike, having agreed on the verdicts): the launcher restarts them all.
    Conic.Runtime.AtomicFile.WriteText(request, reason.Message);
    return 0;
}
catch (Conic.Models.OneDnnIsaCapNeeded reason)
{
    // oneDNN reads its instruction-set cap once, from the environment: only a new process can hold it to AVX2.
    Console.Error.WriteLine($"arithmetic: {reason.Message}; restarting with {Conic.Models.ConvolutionArithmetic.IsaCapVariable}=AVX2");
    return IsaCappedRestart.Run(args);
}
catch (ConicException e)
{
    Console.Error.WriteLine($"\nerror: {e.Message}");
    return 2;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    // A full disk, a folder without write permission, a file vanished: the system's message names the file.
    Console.Error.WriteLine($"\nerror: {e.Message}");
    return 2;
}
catch (Exception e) when (Environment.GetEnvironmentVariable("CONIC_DEBUG") != "1")
{
    Console.Error.WriteLine($"\nerror: {e.GetType().Name}: {e.Message.Split('\n')[0]} (a Conic bug or an unchecked input; CONIC_DEBUG=1 shows where)");
    return 2;
}
