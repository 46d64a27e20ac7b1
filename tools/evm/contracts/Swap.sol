// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./IERC20.sol";

/// A one-pair constant-product pool (ETH / token, 0.3% fee, Uniswap v2 formula).
/// The reserves are the contract's balances: ETH liquidity comes with the deployment
/// (payable constructor), token liquidity by a plain token transfer.
contract Swap {
    IERC20 public immutable token;

    event Swapped(address indexed sender, address indexed to, bool ethIn, uint256 amountIn, uint256 amountOut);

    constructor(IERC20 token_) payable {
        token = token_;
    }

    function getAmountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) public pure returns (uint256) {
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }

    function swapEthForToken(uint256 minOut, address to) external payable returns (uint256 out) {
        uint256 reserveEth = address(this).balance - msg.value;
        out = getAmountOut(msg.value, reserveEth, token.balanceOf(address(this)));
        require(out >= minOut, "slippage");
        require(token.transfer(to, out), "token transfer failed");
        emit Swapped(msg.sender, to, true, msg.value, out);
    }

    function swapTokenForEth(uint256 amountIn, uint256 minOut, address payable to) external returns (uint256 out) {
        out = getAmountOut(amountIn, token.balanceOf(address(this)), address(this).balance);
        require(out >= minOut, "slippage");
        require(token.transferFrom(msg.sender, address(this), amountIn), "token transfer failed");
        (bool ok, ) = to.call{value: out}("");
        require(ok, "ETH transfer failed");
        emit Swapped(msg.sender, to, false, amountIn, out);
    }
}
