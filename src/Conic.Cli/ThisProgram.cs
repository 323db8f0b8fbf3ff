/// <summary>How to start this program again with other arguments.</summary>
static class ThisProgram
{
    /// <summary>
    /// The executable and arguments that run this program with <paramref name="args"/>: started as `dotnet Conic.Cli.dll ...`
    /// the executable is dotnet and the first argument the assembly; as a .NET tool, the apphost itself.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) With(IEnumerable<string> args)
    {
        string program = Environment.ProcessPath!;
        var arguments = Path.GetFileNameWithoutExtension(program) == "dotnet" ? args.Prepend(Environment.GetCommandLineArgs()[0]) : args;
        return (program, arguments.ToArray());
    }
}
