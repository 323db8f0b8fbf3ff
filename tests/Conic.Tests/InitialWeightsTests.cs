using Conic.Export;
using Conic.Models;
using Conic.Transfer;
using static TorchSharp.torch;

namespace Conic.Tests;

/// <summary><c>--init FILE</c>: a backbone starts from torchvision's, timm's or Conic's ResNet weights.</summary>
public class InitialWeightsTests
{
    [PyTorchFact]
    public void TorchvisionResNetWeightsGiveItsFeaturesFromEveryFileKind()
    {
        AssertFilesGivePyTorchsFeatures("resnet18", new BackboneOptions { Width = 64, SmallImageStem = false, InputChannels = 3 });
        AssertFilesGivePyTorchsFeatures("resnet50", new BackboneOptions { Depth = ResNetDepth.ResNet50, Width = 64, SmallImageStem = false, InputChannels = 3 });
    }

    [PyTorchFact]
    public void TorchvisionVisionTransformerWeightsGiveItsFeaturesUnderTorchvisionsAndTimmsNames()
    {
        AssertFilesGivePyTorchsFeatures("vit_tiny", new BackboneOptions { Vit = VitSize.Tiny, InputChannels = 3 });
        AssertFilesGivePyTorchsFeatures("vit_small", new BackboneOptions { Vit = VitSize.Small, InputChannels = 3 });
    }

    [PyTorchFact]
    public void TorchvisionConvNeXtWeightsGiveItsFeaturesUnderTorchvisionsAndTimmsNames() =>
        AssertFilesGivePyTorchsFeatures("convnext_tiny", new BackboneOptions { ConvNext = ConvNextSize.Tiny, SmallImageStem = false, InputChannels = 3 });

    /// <summary>
    /// torchvision_saves.py's network of <paramref name="arch"/> read from a state dict as torch.save writes it, from the
    /// same tensors as safetensors (a ViT's or ConvNeXt's under timm's names) and from a training checkpoint holding it under a
    /// prefix: each gives <paramref name="expected"/>'s shape and PyTorch's features to 1e-5.
    /// </summary>
    static void AssertFilesGivePyTorchsFeatures(string arch, BackboneOptions expected)
    {
        string folder = TestFolder.New();
        var (exitCode, _, errors) = ExternalProgram.Run(PyTorchFactAttribute.Python, Path.Combine(AppContext.BaseDirectory, "python", "torchvision_saves.py"), arch, folder);
        Assert.True(exitCode == 0, errors);
        using var inputs = ReadNpy(Path.Combine(folder, "inputs.npy"));
        using var pytorch = ReadNpy(Path.Combine(folder, "features.npy"));
        foreach (string file in new[] { $"{arch}.pth", $"{arch}.safetensors", "checkpoint.pth" })
        {
            using var weights = InitialWeights.Read(Path.Combine(folder, file));
            Assert.Equal(expected, weights.Backbone);
            Assert.Equal(file == "checkpoint.pth" ? "module." : "", weights.Prefix);
            using var backbone = Backbone.Create(weights.Backbone);
            weights.LoadInto(backbone);
            backbone.eval();
            using var features = backbone.call(inputs);
            double difference = (features - pytorch).abs().max().item<float>();
            Assert.True(difference <= 1e-5 * Math.Max(1, pytorch.abs().max().item<float>()), $"{arch} from {file}: features differ from PyTorch's by {difference}");
        }
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void GrayscaleImagesSeeTheRgbFiltersSummed()
    {
        string file = Path.Combine(TestFolder.New(), "rgb.safetensors");
        manual_seed(1);
        using var rgb = new ResNet(new BackboneOptions { Width = 8, InputChannels = 3 });
        RandomizeBatchNorms(rgb);
        SafetensorsWriter.Write(file, rgb.state_dict().Select(kv => (kv.Key, kv.Value)));

        using var weights = InitialWeights.Read(file);
        Assert.Equal(new BackboneOptions { Width = 8, InputChannels = 3 }, weights.Backbone);
        using var gray = new ResNet(weights.Backbone with { InputChannels = 1 });
        weights.LoadInto(gray);
        rgb.eval();
        gray.eval();
        using var images = randn(4, 1, 16, 16);
        using var expected = rgb.call(images.repeat(1, 3, 1, 1));
        using var actual = gray.call(images);
        TensorAssert.RelativelyClose(expected, actual, "a grayscale image through summed filters against it repeated over RGB", 1e-4);
    }

    [Fact]
    public void AFileThatDoesNotFitSaysWhichKeyAndWhy()
    {
        string folder = TestFolder.New();
        manual_seed(0);
        using var source = new ResNet(new BackboneOptions { Width = 8 });
        var state = source.state_dict();

        string Write(string name, IEnumerable<(string, Tensor)> tensors)
        {
            string path = Path.Combine(folder, name);
            SafetensorsWriter.Write(path, tensors);
            return path;
        }
        string Problem(string path, BackboneOptions backbone)
        {
            using var weights = InitialWeights.Read(path);
            using var target = new ResNet(backbone);
            return Assert.Throws<ConicException>(() => weights.LoadInto(target)).Message;
        }

        string whole = Write("whole.safetensors", state.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal($"{whole}: conv1.weight has shape [8, 1, 3, 3], the backbone's is [16, 1, 3, 3]: the file holds a resnet18 of width 8 " +
                     "with the small stem, the backbone is a resnet18 of width 16 with the small stem", Problem(whole, new BackboneOptions { Width = 16 }));
        string missing = Write("missing.safetensors", state.Where(kv => kv.Key != "layer4.1.bn2.running_var").Select(kv => (kv.Key, kv.Value)));
        Assert.Equal($"{missing}: missing key layer4.1.bn2.running_var (a resnet18 of width 8 with the small stem needs it)", Problem(missing, new BackboneOptions { Width = 8 }));
        using var extra = zeros(3);
        string unexpected = Write("unexpected.safetensors", state.Select(kv => (kv.Key, kv.Value)).Append(("layer1.0.se.weight", extra)));
        Assert.Equal($"{unexpected}: unexpected key layer1.0.se.weight (not in a resnet18 of width 8 with the small stem)", Problem(unexpected, new BackboneOptions { Width = 8 }));

        // What holds no ResNet at all fails when read.
        string other = Write("other.safetensors", [("encoder.weight", extra)]);
        Assert.StartsWith($"{other}: holds no ResNet", Assert.Throws<ConicException>(() => InitialWeights.Read(other)).Message);
        string text = Path.Combine(folder, "notes.pth");
        File.WriteAllText(text, "not weights");
        Assert.StartsWith($"{text}: not a readable state dict", Assert.Throws<ConicException>(() => InitialWeights.Read(text)).Message);
        Assert.Equal($"{folder}/absent.pt: no such file", Assert.Throws<ConicException>(() => InitialWeights.Read(Path.Combine(folder, "absent.pt"))).Message);
        // A ResNet-34 (basic blocks [3, 4, 6, 3]) is named as such.
        string resnet34 = Write("resnet34.safetensors", state.Select(kv => (kv.Key, kv.Value))
            .Concat(state.Where(kv => kv.Key.StartsWith("layer1.1.", StringComparison.Ordinal)).Select(kv => ("layer1.2." + kv.Key["layer1.1.".Length..], kv.Value))));
        Assert.Contains("holds a ResNet of basic blocks [3, 2, 2, 2]", Assert.Throws<ConicException>(() => InitialWeights.Read(resnet34)).Message);
    }

    [Fact]
    public void PretrainAndProbeStartFromTheFileWithItsShape()
    {
        string data = SyntheticData.WriteIdx(trainCount: 48, testCount: 16);
        string file = Path.Combine(data, "start.safetensors");
        manual_seed(2);
        using var source = new ResNet(new BackboneOptions { Width = 8 });
        RandomizeBatchNorms(source);
        SafetensorsWriter.Write(file, source.state_dict().Select(kv => (kv.Key, kv.Value)));

        // No --width: the file's 8 is taken; the run records where it started.
        string run = Path.Combine(data, "run");
        var pretrain = CliRunner.Run("pretrain", "--data", data, "--run", run, "--init", file, "--instances", "32", "--batch-size", "16", "--epochs", "1",
                                     "--threads", "1", "--no-eval", "--monitor-every", "0", "--precision", "fp32");
        Assert.True(pretrain.ExitCode == 0, pretrain.StdErr);
        string config = File.ReadAllText(Path.Combine(run, "config.json"));
        Assert.Contains("\"width\": 8", config);
        Assert.Contains($"\"init\": \"{file}\"", config);

        // A probe on the frozen backbone keeps the file's weights exactly.
        string probe = Path.Combine(data, "probe");
        var probing = CliRunner.Run("probe", "--run", "none", "--init", file, "--data", data, "--save", "--out", probe, "--epochs", "1", "--batch-size", "8",
                                    "--threads", "1", "--precision", "fp32");
        Assert.True(probing.ExitCode == 0, probing.StdErr);
        using var finetuned = FinetunedModel.Load(probe);
        var trained = finetuned.Network.state_dict();
        foreach (var (name, tensor) in source.state_dict().Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
            Assert.True(trained["backbone." + name].equal(tensor).all().item<bool>(), $"backbone.{name} differs from the file's");

        // Bad input: one line naming the file, exit code 2.
        string absent = Path.Combine(data, "absent.pth");
        var bad = CliRunner.Run("pretrain", "--data", data, "--run", Path.Combine(data, "bad"), "--init", absent, "--epochs", "1");
        Assert.Equal(2, bad.ExitCode);
        Assert.EndsWith($"{absent}: no such file", bad.StdErr.Trim());
        Assert.Single(bad.StdErr.Trim().Split('\n'));
        var both = CliRunner.Run("probe", "--run", run, "--init", file, "--data", data);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("--init starts a backbone of its own: give --run none with it", both.StdErr);
    }

    /// <summary>BatchNorm statistics and affine parameters away from 0 and 1, as a trained network's are.</summary>
    static void RandomizeBatchNorms(ResNet network)
    {
        using var noGrad = no_grad();
        foreach (var (name, tensor) in network.state_dict())
        {
            if (name.EndsWith("running_var", StringComparison.Ordinal) || name.EndsWith("bn1.weight", StringComparison.Ordinal) || name.EndsWith("bn2.weight", StringComparison.Ordinal))
                tensor.uniform_(0.5, 1.5);
            else if (name.EndsWith("running_mean", StringComparison.Ordinal) || name.Contains(".bias", StringComparison.Ordinal))
                tensor.uniform_(-0.2, 0.2);
        }
    }

    /// <summary>A float32 array numpy.save wrote (format 1.0: magic, version, header length, header, data).</summary>
    static Tensor ReadNpy(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        string header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.Contains("'descr': '<f4'", header);
        string shape = header[(header.IndexOf("'shape': (", StringComparison.Ordinal) + 10)..];
        long[] dims = shape[..shape.IndexOf(')')].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        var values = new float[dims.Aggregate(1L, (a, b) => a * b)];
        Buffer.BlockCopy(bytes, 10 + headerLength, values, 0, values.Length * sizeof(float));
        return tensor(values).reshape(dims);
    }
}
