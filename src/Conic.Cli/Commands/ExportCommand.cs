using System.Globalization;
using Conic.Export;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic export</c>: the trained backbone in a format other frameworks load.</summary>
static class ExportCommand
{
    public static int Run(string[] args)
    {
        string run = new PretrainOptions().RunDirectory;
        string? output = null;
        var table = new OptionTable("export",
            "Writes the trained backbone with torchvision's ResNet parameter names (conv1, bn1, layer1.0.conv1, ...;\n" +
            "no fc) as safetensors. torchvision's resnet18/50 load it with strict=True once conv1/maxpool match the\n" +
            "run's stem and fc is nn.Identity(); the channel mean and std of the inputs are in the file's metadata.");
        table.Value("--run", "DIR", "run folder with checkpoint.bin", () => run, v => run = v);
        table.Value("--format", "NAME", "safetensors", () => "safetensors", v => OptionTable.Choice("--format", v, ("safetensors", 0)));
        table.Value("--out", "PATH", "output file", () => "RUN/encoder.safetensors", v => output = v);
        if (!table.Parse(args)) return 0;

        using var model = PretrainedModel.Load(run);
        string path = output ?? Path.Combine(run, "encoder.safetensors");
        var options = model.Backbone.Options;
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["arch"] = options.Depth.ToString().ToLowerInvariant(),
            ["width"] = options.Width.ToString(CultureInfo.InvariantCulture),
            ["stem"] = options.SmallImageStem ? "small: conv1 3x3 stride 1 padding 1, no max-pool" : "imagenet",
            ["input_channels"] = options.InputChannels.ToString(CultureInfo.InvariantCulture),
            ["channel_mean"] = string.Join(",", model.ChannelMean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))),
            ["channel_std"] = string.Join(",", model.ChannelStd.Select(s => s.ToString("R", CultureInfo.InvariantCulture))),
            ["method"] = model.Options.Method,
        };
        SafetensorsWriter.Write(path, model.Backbone.state_dict().Select(kv => (kv.Key, kv.Value)), metadata);
        Console.Error.WriteLine($"exported: {path}");
        return 0;
    }
}
