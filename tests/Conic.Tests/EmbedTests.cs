using System.Globalization;
using System.Text;
using Conic.Data;
using Conic.Evaluation;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Tests;

public class EmbedTests
{
    [Fact]
    public void EmbedWritesEveryImagesFeaturesAsCsvAndNpy()
    {
        string data = SyntheticData.WriteIdx(trainCount: 80, testCount: 20);
        string run = CliRunner.PretrainOneEpoch(data, instances: 64, batchSize: 32, width: 4, threads: 1);

        string prefix = Path.Combine(data, "out", "test-embeddings");
        var (exitCode, _, stderr) = CliRunner.Run("embed", "--run", run, "--split", "test", "--out", prefix);
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("embedding 20/20 images", stderr);

        using var model = PretrainedModel.Load(run);
        using var expected = FeatureExtractor.Extract(model, DatasetLoader.Load(data).Test!);
        int dim = (int)expected.shape[1];

        var csv = File.ReadAllLines(prefix + ".csv");
        Assert.Equal(21, csv.Length);
        Assert.Equal("image,f0", csv[0][..8]);
        var row7 = csv[8].Split(',');
        Assert.Equal("7", row7[0]);
        Assert.Equal(dim + 1, row7.Length);
        var csvRow7 = row7[1..].Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();

        var npy = File.ReadAllBytes(prefix + ".npy");
        Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 }, npy[..8]);
        int headerLength = BitConverter.ToUInt16(npy, 8);
        Assert.Equal(0, (10 + headerLength) % 64);
        Assert.Contains($"'shape': (20, {dim})", Encoding.ASCII.GetString(npy, 10, headerLength));
        var values = new float[20 * dim];
        Buffer.BlockCopy(npy, 10 + headerLength, values, 0, values.Length * 4);
        // The CSV and the .npy come from one process: the same numbers. The command chose its own convolution kernels
        // (its start-up check), which may differ from the suite's, so it matches this process's features to rounding.
        Assert.Equal(values[(7 * dim)..(8 * dim)], csvRow7);
        TensorAssert.RelativelyClose(expected, tensor(values).reshape(expected.shape), "the .npy's features against this process's");
    }
}
