namespace AttentionViz.Backend.Tests;

[TestClass]
public sealed class SmokeTests
{
    [TestMethod]
    public void TorchLoads() => Assert.AreEqual(6f, TorchSharp.torch.ones(2, 3).sum().item<float>());
}
