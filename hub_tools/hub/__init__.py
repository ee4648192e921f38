"""Publishing: push any repo folder (dataset, model, Space) to the Hub or a local mirror, render its
card from the packaged templates, and draw the card's figures. Stages call this layer; it calls no stage."""
