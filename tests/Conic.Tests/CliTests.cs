namespace Conic.Tests;

public class CliTests
{
    static string OnlyLine(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines);
        return lines[0];
    }

    [Theory]
    [InlineData("--epochs abc", "error: --epochs: 'abc' is not an integer")]
    [InlineData("--epochs 0", "error: --epochs: 0 must be >= 1")]
    [InlineData("--bogus", "error: --bogus: unknown option for 'conic pretrain' (see conic pretrain --help)")]
    [InlineData("--lamda 0", "error: --lamda: unknown option for 'conic pretrain' (did you mean --lambda? see conic pretrain --help)")]
    [InlineData("--swav-prototypes 10", "error: --swav-prototypes: a setting of method swav, not of conic (give --method swav)")]
    [InlineData("--data /no/such/folder", "error: /no/such/folder: no such folder (--data)")]
    [InlineData("--arch vgg", "error: --arch: 'vgg' is not one of resnet18, resnet50, vit-tiny, vit-small, convnext-tiny")]
    [InlineData("--lr", "error: Required argument missing for option: '--lr'. (see conic pretrain --help)")]
    [InlineData("--lambda-ramp 2", "error: --lambda-ramp: 2 must be in [0, 1]")]
    public void BadInputEndsWithOneLineNamingTheProblem(string arguments, string expected)
    {
        var (exitCode, _, stderr) = CliRunner.Run(new[] { "pretrain" }.Concat(arguments.Split(' ')).ToArray());
        Assert.Equal(2, exitCode);
        Assert.Equal(expected, OnlyLine(stderr));
    }

    [Fact]
    public void BadFlipProbabilityIsRejectedBeforeTraining()
    {
        string data = SyntheticData.WriteIdx(trainCount: 16, testCount: 8);
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--data", data, "--flip-p", "2", "--run", Path.Combine(data, "run"));
        Assert.Equal(2, exitCode);
        Assert.EndsWith("error: --flip-p: 2 must be in [0, 1]", stderr.Trim());
    }

    [Fact]
    public void HelpListsEveryOptionWithItsDefault()
    {
        var (exitCode, stdout, _) = CliRunner.Run("pretrain", "--help");
        Assert.Equal(0, exitCode);
        foreach (var option in new[] { "--data", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--width", "--arch", "--temperature", "--lambda", "--resume", "--blur-p" })
            Assert.Contains(option, stdout);
        Assert.Contains("(default: 256)", stdout);
    }

    [Fact]
    public void UnknownCommandIsOneLine()
    {
        var (exitCode, _, stderr) = CliRunner.Run("train");
        Assert.Equal(2, exitCode);
        Assert.StartsWith("error: 'train' is not a conic command", OnlyLine(stderr));
    }

    public static TheoryData<string> Commands =>
        new() { "pretrain", "eval", "compare", "report", "curves", "embed", "export", "cache", "make-scenes", "finetune", "probe", "transfer" };

    [Theory]
    [MemberData(nameof(Commands))]
    public void EveryCommandsHelpIsWrappedAndListsItsOptions(string command)
    {
        var (exitCode, stdout, _) = CliRunner.Run(command, "--help");
        Assert.Equal(0, exitCode);
        Assert.StartsWith($"usage: conic {command} [options]", stdout);
        Assert.Contains("-h, --help", stdout);
        string longest = stdout.Split('\n').MaxBy(line => line.TrimEnd().Length)!.TrimEnd();
        Assert.True(longest.Length <= 100, $"a line of {longest.Length} characters: {longest}");
    }

    [Fact]
    public void TheCommandListIsWrappedToo()
    {
        var (exitCode, stdout, _) = CliRunner.Run("--help");
        Assert.Equal(0, exitCode);
        foreach (string command in Commands) Assert.Matches($"(?m)^  {command} ", stdout);
        Assert.True(stdout.Split('\n').All(line => line.TrimEnd().Length <= 100));
    }

    [Fact]
    public void FinetuneHelpGroupsItsSettingsAndProbeLeavesOutWhatItFixes()
    {
        var (_, finetune, _) = CliRunner.Run("finetune", "--help");
        foreach (string heading in new[] { "task:", "training:", "backbone of --run none:", "finetune:" })
            Assert.Matches($"(?m)^{System.Text.RegularExpressions.Regex.Escape(heading)}$", finetune);
        Assert.Matches(@"(?m)^  --time-budget TIME\s", finetune);
        Assert.Matches(@"(?m)^  --freeze-backbone\s", finetune);
        Assert.Matches(@"(?m)^  --init FILE\s", finetune);
        Assert.Contains("(default: 0.05)", finetune);
        var (_, probe, _) = CliRunner.Run("probe", "--help");
        Assert.DoesNotMatch(@"(?m)^  --task\s", probe);
        Assert.DoesNotMatch(@"(?m)^  --freeze-backbone\s", probe);
        Assert.Matches(@"(?m)^  --save\s", probe);
    }

    [Fact]
    public void AMistypedCommandGetsASuggestion()
    {
        var (exitCode, _, stderr) = CliRunner.Run("pretrian");
        Assert.Equal(2, exitCode);
        Assert.StartsWith("error: 'pretrian' is not a conic command (did you mean pretrain? commands: pretrain, eval,", OnlyLine(stderr));
    }
}
