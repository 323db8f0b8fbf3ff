using Conic;
using Conic.Cli.Commands;

var commands = new Dictionary<string, Func<string[], int>>
{
    ["pretrain"] = PretrainCommand.Run,
    ["eval"] = EvalCommand.Run,
    ["compare"] = CompareCommand.Run,
    ["report"] = ReportCommand.Run,
    ["embed"] = EmbedCommand.Run,
    ["export"] = ExportCommand.Run,
};

if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
{
    Console.WriteLine("""
        conic - self-supervised image encoders for .NET (ConIC: consistent instance classification)

        usage: conic <command> [options]

        commands:
          pretrain   pretrain an encoder on unlabelled images, then evaluate it (kNN, linear probe)
          eval       evaluate a run's encoder: weighted kNN and a linear probe on frozen features
          compare    pretrain several methods under one budget and seed, evaluate each, write one table
          report     write a run's HTML report: curves, activation maps, nearest neighbours, evaluation, configuration
          embed      embeddings of every image of a folder or dataset, as CSV and .npy
          export     the trained backbone for other frameworks: safetensors or PyTorch (torchvision names), or ONNX

        'conic <command> --help' lists every option with its default.
        """);
    return args.Length == 0 ? 1 : 0;
}

if (!commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine($"error: '{args[0]}' is not a conic command (pretrain, eval, compare, report, embed, export; see conic --help)");
    return 2;
}

Conic.Models.ArithmeticCheck.RestartWithIsaCapAllowed = true;
try
{
    return command(args[1..]);
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
