// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Pays several recipients in one transaction. A payment that fails (the recipient
/// reverts) is skipped and its ETH is refunded to the sender at the end: the
/// transaction succeeds, the failed inner call moved nothing.
contract Disperse {
    event Paid(address indexed to, uint256 value);
    event PaymentFailed(address indexed to, uint256 value);

    function disperse(address payable[] calldata to, uint256[] calldata amounts) external payable {
        require(to.length == amounts.length, "length mismatch");
        uint256 total;
        for (uint256 i = 0; i < to.length; i++) {
            total += amounts[i];
            (bool ok, ) = to[i].call{value: amounts[i]}("");
            if (ok) emit Paid(to[i], amounts[i]);
            else emit PaymentFailed(to[i], amounts[i]);
        }
        require(total <= msg.value, "not enough ETH");
        uint256 refund = address(this).balance;
        if (refund > 0) {
            (bool ok, ) = payable(msg.sender).call{value: refund}("");
            require(ok, "refund failed");
        }
    }
}

/// A recipient that passes what it receives on to `sink` and then reverts, so the
/// passing-on (a call that itself succeeded) is undone with it: a successful frame
/// inside a reverted one.
contract Fickle {
    address payable public immutable sink;

    constructor(address payable sink_) {
        sink = sink_;
    }

    receive() external payable {
        (bool ok, ) = sink.call{value: msg.value}("");
        require(ok, "sink refused");
        revert("changed my mind");
    }
}
