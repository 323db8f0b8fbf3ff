using System.Text.Json;
using System.Text.Json.Nodes;
using Conic.Data;
using Conic.Evaluation;
using Conic.Models;
using Conic.Runtime;
using Conic.Transfer;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class DetectionTests
{
    [Theory]
    [InlineData(1, 48)]
    [InlineData(4, 12)]
    public void DecodingTheTrainingTargetsGivesBackTheBoxes(int stride, int outputSide)
    {
        ObjectBox[][] images =
        [
            [new(0, 3, 5, 14, 20), new(2, 25, 20, 16, 11.5f)],
            [new(1, 10, 10, 30, 30), new(1, 30, 2, 12, 9)],
        ];
        const int classes = 3;
        var (heat, size, offset, _) = DetectionTask.Targets(images, classes, stride, outputSide, CPU);
        // The maps a perfect network would output: heat as logits, then log sizes and offsets.
        using var maps = cat([heat.clamp(Kept(1e-6), Kept(1 - 1e-6)).logit(), size, offset], 1);
        var (boxes, scores, kinds) = DetectionTask.Decode(maps, classes, stride, keep: 2);
        for (int b = 0; b < images.Length; b++)
        {
            var expected = images[b].OrderBy(box => box.X).ToArray();
            var found = Enumerable.Range(0, 2).Select(k => (Box: boxes[b, k].data<float>().ToArray(), Class: kinds[b, k].item<long>()))
                                  .OrderBy(f => f.Box[0]).ToArray();
            for (int k = 0; k < 2; k++)
            {
                Assert.Equal(expected[k].Class, found[k].Class);
                Assert.Equal([expected[k].X, expected[k].Y, expected[k].Width, expected[k].Height], found[k].Box, (a, e) => Math.Abs(a - e) < 1e-3);
            }
            Assert.True(scores[b].min().item<float>() > 0.99f);
        }
    }

    [Theory]
    [InlineData(true, 32, 32)]
    [InlineData(false, 64, 16)]
    public void DetectorMapsAreAtTheFirstStagesResolution(bool smallStem, int side, int outputSide)
    {
        using var network = new DenseNetwork(new ResNet(new BackboneOptions { Width = 4, SmallImageStem = smallStem }), outputs: 3 + 4, upsampleToInput: false, decoderChannels: 8);
        using var maps = network.call(randn(2, 1, side, side));
        Assert.Equal([2L, 7, outputSide, outputSide], maps.shape);
        Assert.Equal(side / outputSide, network.OutputStride);
    }

    [Fact]
    public void BadAnnotationsAreOneLineErrorsNamingTheFile()
    {
        string scenes = SyntheticData.WriteScenes(train: 4, val: 2);
        string json = Path.Combine(scenes, "train", DetectionDataset.AnnotationFile);
        string original = File.ReadAllText(json);
        string output = Path.Combine(scenes, "run");
        void Expect(string expected, Action<JsonObject> damage)
        {
            var coco = JsonNode.Parse(original)!.AsObject();
            damage(coco);
            File.WriteAllText(json, coco.ToJsonString());
            var (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune("detection", scenes, "none", output, 1));
            Assert.Equal(2, exitCode);
            Assert.EndsWith($"error: {expected}", stderr.Trim());
            Assert.DoesNotContain("   at ", stderr);
        }
        JsonObject First(JsonObject coco) => coco["annotations"]![0]!.AsObject();

        Expect($"{json}: annotation 1 names image 99, which 'images' does not list", coco => First(coco)["image_id"] = 99);
        Expect($"{json}: annotation 1 (scene-00000.png) has a box of zero area [3, 4, 0, 5]", coco => First(coco)["bbox"] = new JsonArray(3, 4, 0, 5));
        Expect($"{json}: annotation 1 has box [20, 4, 15, 5] outside its image scene-00000.png (32x32)", coco => First(coco)["bbox"] = new JsonArray(20, 4, 15, 5));
        Expect($"{Path.Combine(scenes, "train", "images", "gone.png")}: missing (listed in {json})", coco => coco["images"]![0]!["file_name"] = "gone.png");

        File.WriteAllText(json, original[..(original.Length / 2)]);
        var broken = CliRunner.Run(CliRunner.Finetune("detection", scenes, "none", output, 1));
        Assert.Equal(2, broken.ExitCode);
        Assert.StartsWith($"error: {json}: not valid COCO JSON", broken.StdErr.Trim().Split('\n')[^1]);
    }
}
